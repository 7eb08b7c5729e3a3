import { ConfigurationError, loadEnvironment } from './environment';
import { AppConfig } from './app-config';
import { parseRedisClusterNodes } from './redis-target';

const SECRET = 's3cr:t/p@ss-of-the-cluster';
const encoded = encodeURIComponent(SECRET);

function configurationError(source: Record<string, string>): string {
  try {
    loadEnvironment(source, []);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error('the configuration was accepted');
}

describe('REDIS_CLUSTER_NODES', () => {
  it('reads host:port entries, IPv6 in brackets, with no credentials and no TLS', () => {
    expect(parseRedisClusterNodes('redis-0:7000, 10.0.0.2:7001,[::1]:7002')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'redis-0', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      tls: false,
      username: undefined,
      password: undefined,
    });
  });

  it('gives the credentials and TLS of URL entries to every node, plain entries too', () => {
    expect(parseRedisClusterNodes(`rediss://app:${encoded}@node-1.example.com:6380,node-2.example.com:6380,rediss://app:${encoded}@node-3.example.com`)).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'node-1.example.com', port: 6380 },
        { host: 'node-2.example.com', port: 6380 },
        { host: 'node-3.example.com', port: 6379 },
      ],
      tls: true,
      username: 'app',
      password: SECRET,
    });
    expect(parseRedisClusterNodes(`redis://:${encoded}@127.0.0.1:7000`)).toMatchObject({ tls: false, username: undefined, password: SECRET });
  });

  it.each([
    ['', 'entry 1 of 1 is empty'],
    ['a:7000,,b:7001', 'entry 2 of 3 is empty'],
    ['redis-0', 'entry 1 of 1 is neither host:port nor a redis:// or rediss:// URL'],
    ['redis-0:7000,redis-1:0', 'entry 2 of 2 has a port outside 1-65535'],
    ['redis-0:70000', 'entry 1 of 1 has a port outside 1-65535'],
    ['http://redis-0:7000', 'entry 1 of 1 is neither host:port nor a redis:// or rediss:// URL'],
    ['redis://redis-0:99999', 'entry 1 of 1 is not a valid URL'],
    ['redis://redis-0:7000/2', 'entry 1 of 1 names a database other than 0 (a cluster has only database 0)'],
    [`redis://:${encoded}@a:7000,rediss://:${encoded}@b:7000`, 'entry 2 of 2 gives another scheme or other credentials than an earlier entry (the nodes of a cluster share them)'],
    [`redis://:${encoded}@a:7000,redis://:other-password@b:7000`, 'entry 2 of 2 gives another scheme or other credentials than an earlier entry (the nodes of a cluster share them)'],
  ])('refuses %j, saying where', (value, problem) => {
    expect(parseRedisClusterNodes(value)).toBe(`REDIS_CLUSTER_NODES ${problem}`);
  });

  it('is refused at start by name, never echoing a password or an entry', () => {
    const message = configurationError({ REDIS_CLUSTER_NODES: `redis://:${encoded}@a:7000,rediss://:${encoded}@b:7000,c` });
    expect(message).toBe(
      'invalid configuration: REDIS_CLUSTER_NODES entry 2 of 3 gives another scheme or other credentials than an earlier entry (the nodes of a cluster share them)',
    );
    for (const secret of [SECRET, encoded, 's3cr']) expect(message).not.toContain(secret);
  });

  it('refuses a REDIS_URL of its own beside it, without echoing either', () => {
    const message = configurationError({ REDIS_CLUSTER_NODES: 'a:7000', REDIS_URL: `redis://:${encoded}@redis-host:6379` });
    expect(message).toMatch(/^invalid configuration: REDIS_URL is set beside REDIS_CLUSTER_NODES, which replaces it: unset REDIS_URL/);
    expect(message).not.toContain(encoded);
    expect(message).not.toContain('redis-host');
    // The default REDIS_URL written out, as compose files do, says nothing else: accepted.
    expect(loadEnvironment({ REDIS_CLUSTER_NODES: 'a:7000', REDIS_URL: 'redis://localhost:6379' }, []).REDIS_CLUSTER_NODES).toBe('a:7000');
  });

  it('selects the cluster in the typed configuration; REDIS_URL alone, one server', () => {
    expect(new AppConfig(loadEnvironment({ REDIS_CLUSTER_NODES: 'a:7000,b:7001' }, [])).redis).toMatchObject({ kind: 'cluster', nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }] });
    expect(new AppConfig(loadEnvironment({ REDIS_URL: 'redis://redis:6379' }, [])).redis).toEqual({ kind: 'single', url: 'redis://redis:6379' });
  });
});
