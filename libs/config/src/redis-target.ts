/** One Redis server, as REDIS_URL names it. */
export interface SingleRedisTarget {
  kind: 'single';
  url: string;
}

/** A Redis Cluster, from REDIS_CLUSTER_NODES: seed nodes, and the credentials and TLS every node shares. */
export interface RedisClusterTarget {
  kind: 'cluster';
  nodes: Array<{ host: string; port: number }>;
  username?: string;
  password?: string;
  tls: boolean;
}

export type RedisTarget = SingleRedisTarget | RedisClusterTarget;

export const DEFAULT_REDIS_URL = 'redis://localhost:6379';

// A host name, an IPv4 address or a bracketed IPv6 address, then a port.
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;

const validPort = (text: string): number | undefined => {
  const port = Number(text);
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? port : undefined;
};

interface ParsedEntry {
  host: string;
  port: number;
  /** Only for URL entries: what the URL says of TLS and credentials. */
  url?: { tls: boolean; username?: string; password?: string };
}

/** One entry; the problem is described without the entry's text, which may hold a password. */
function parseEntry(entry: string): ParsedEntry | string {
  if (/^rediss?:\/\//i.test(entry)) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      return 'is not a valid URL';
    }
    if (!url.hostname) return 'has no host';
    const port = url.port === '' ? 6379 : validPort(url.port);
    if (port === undefined) return 'has no valid port';
    if (url.pathname !== '' && url.pathname !== '/' && url.pathname !== '/0') return 'names a database other than 0 (a cluster has only database 0)';
    if (url.search || url.hash) return 'has a query or fragment, which is not read';
    let username: string | undefined;
    let password: string | undefined;
    try {
      username = url.username ? decodeURIComponent(url.username) : undefined;
      password = url.password ? decodeURIComponent(url.password) : undefined;
    } catch {
      return 'has credentials that are not valid percent-encoding';
    }
    return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port, url: { tls: url.protocol.toLowerCase() === 'rediss:', username, password } };
  }
  const match = HOST_PORT.exec(entry);
  if (!match) return 'is neither host:port nor a redis:// or rediss:// URL';
  const port = validPort(match[2]);
  if (port === undefined) return 'has a port outside 1-65535';
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * Reads REDIS_CLUSTER_NODES: comma-separated `host:port` entries or `redis://` / `rediss://` URLs.
 * The cluster's nodes share one password and one TLS setting: URL entries give them (to every node,
 * plain `host:port` entries too) and must agree. Answers the problem as a sentence naming the
 * variable and the entry's position, never its text.
 */
export function parseRedisClusterNodes(value: string): RedisClusterTarget | string {
  const entries = value.split(',').map((entry) => entry.trim());
  const nodes: RedisClusterTarget['nodes'] = [];
  let shared: ParsedEntry['url'];
  for (const [index, entry] of entries.entries()) {
    const where = `REDIS_CLUSTER_NODES entry ${index + 1} of ${entries.length}`;
    if (entry === '') return `${where} is empty`;
    const parsed = parseEntry(entry);
    if (typeof parsed === 'string') return `${where} ${parsed}`;
    if (parsed.url) {
      if (shared && (shared.tls !== parsed.url.tls || shared.username !== parsed.url.username || shared.password !== parsed.url.password)) {
        return `${where} gives another scheme or other credentials than an earlier entry (the nodes of a cluster share them)`;
      }
      shared = parsed.url;
    }
    nodes.push({ host: parsed.host, port: parsed.port });
  }
  return { kind: 'cluster', nodes, tls: shared?.tls ?? false, username: shared?.username, password: shared?.password };
}
