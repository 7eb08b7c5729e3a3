import { Cluster } from 'ioredis';
import { createBullmqConnection, createFailFastConnection, queueKeyPrefix } from './redis-connections';
import { isRedisUnavailable } from './redis-errors';

describe('queueKeyPrefix', () => {
  it('is a hash tag on a cluster, so that every key of the queue hashes to one slot', () => {
    expect(queueKeyPrefix('bull', true)).toBe('{bull}');
    expect(queueKeyPrefix('test-1a2b', true)).toBe('{test-1a2b}');
  });

  it('stays the plain prefix on one Redis, so that existing keys keep their names', () => {
    expect(queueKeyPrefix('bull', false)).toBe('bull');
  });
});

describe('cluster connections', () => {
  const target = { kind: 'cluster' as const, nodes: [{ host: '127.0.0.1', port: 1 }], username: 'app', password: 'cluster-password', tls: true };

  it('gives every node the credentials and TLS, and skips the ready check that can leave connect() unsettled', () => {
    const { owned } = createBullmqConnection(target);
    expect(owned).toBeInstanceOf(Cluster);
    expect(owned!.options).toMatchObject({
      enableReadyCheck: false,
      lazyConnect: true,
      redisOptions: { username: 'app', password: 'cluster-password', tls: {}, maxRetriesPerRequest: null },
    });
    // BullMQ's workers duplicate it: the copies keep all of it.
    expect(owned!.duplicate().options).toMatchObject({ enableReadyCheck: false, redisOptions: { password: 'cluster-password', tls: {} } });
    owned!.disconnect();
  });

  it('makes the fail-fast client refuse commands while the cluster is not ready, as an outage', async () => {
    const client = createFailFastConnection({ ...target, tls: false }) as Cluster;
    client.on('error', () => undefined);
    expect(client.options).toMatchObject({ enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } });
    expect(client.options.redisOptions).not.toHaveProperty('tls');
    const refused = await client.get('{bull}:mailjet-events:meta').catch((error: unknown) => error);
    expect(isRedisUnavailable(refused)).toBe(true);
    client.disconnect();
  });
});

describe('isRedisUnavailable', () => {
  it.each([
    'Failed to refresh slots cache.',
    'None of startup nodes is available',
    'CLUSTERDOWN The cluster is down',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'Too many Cluster redirections. Last error: ReplyError: MOVED 1234 127.0.0.1:7001',
    "Cluster isn't ready and enableOfflineQueue options is false",
  ])('takes %j for Redis unavailable', (message) => {
    expect(isRedisUnavailable(new Error(message))).toBe(true);
  });

  it('does not take a wrong command for an outage', () => {
    expect(isRedisUnavailable(new Error("CROSSSLOT Keys in request don't hash to the same slot"))).toBe(false);
    expect(isRedisUnavailable(new Error('ERR wrong number of arguments'))).toBe(false);
  });
});
