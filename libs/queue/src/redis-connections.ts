import type { ConnectionOptions } from 'bullmq';
import IORedis, { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { RedisClusterTarget, RedisTarget } from '@app/config';

/** A connection to the configured Redis: one server, or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * The prefix of the queue's keys in Redis. BullMQ's scripts touch several keys of a queue at once,
 * which a cluster allows only within one slot: there the prefix is a hash tag, `{QUEUE_PREFIX}`, and
 * every key of the queue hashes to that slot. One Redis keeps the plain prefix, so that the keys of
 * an existing deployment keep their names. Anything that names a key by hand goes through this.
 */
export function queueKeyPrefix(queuePrefix: string, cluster: boolean): string {
  return cluster ? `{${queuePrefix}}` : queuePrefix;
}

/** Reconnect quickly once Redis is back: the recovery loop and health depend on it. */
const reconnectSoon = (times: number) => Math.min(times * 100, 1000);

/** What every client of a cluster sets: how it finds the nodes and rides out a failover. */
function clusterOptions(target: RedisClusterTarget, redisOptions: RedisOptions): ClusterOptions {
  const { username, password, tls } = target;
  return {
    // When the ready check (CLUSTER INFO) fails, as it can while a failover is under way, ioredis
    // 6.0.0 reconnects without ever settling the promise of `connect()` (cluster/index.js), and a
    // BullMQ worker that awaits it stops fetching (BullMQ 6.7 gives up on it after 30 s). Without the
    // check, commands meet a cluster that is not ready yet: they are retried (below) or fail.
    enableReadyCheck: false,
    clusterRetryStrategy: reconnectSoon,
    slotsRefreshTimeout: 2000,
    slotsRefreshInterval: 5000,
    // A master that died: commands wait for the slot map to name its promoted replica.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 200,
    // With TLS, keep the names the cluster announces, so that certificates verify against them.
    ...(tls ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) } : {}),
    redisOptions: {
      ...redisOptions,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      ...(tls ? { tls: {} } : {}),
    },
  };
}

/**
 * The client that fails at once while Redis is unreachable, instead of queueing commands: the
 * api's queue calls during a callback, health, the dashboard's door, the sweep.
 */
export function createFailFastConnection(target: RedisTarget): RedisClient {
  const redisOptions: RedisOptions = { maxRetriesPerRequest: 1, connectTimeout: 2000 };
  if (target.kind === 'single') return new IORedis(target.url, { ...redisOptions, enableOfflineQueue: false, retryStrategy: reconnectSoon });
  return new Cluster(target.nodes, { ...clusterOptions(target, redisOptions), enableOfflineQueue: false });
}

/**
 * BullMQ's own connections (the worker's queue and workers), which wait for Redis forever. On one
 * Redis, options: BullMQ makes and closes its clients. On a cluster, a client (`owned`) that BullMQ
 * shares with the queue and duplicates for each worker, blocking fetch included; whoever asked for
 * it closes it, after the queue and the workers.
 */
export function createBullmqConnection(target: RedisTarget): { connection: ConnectionOptions; owned?: Cluster } {
  if (target.kind === 'single') return { connection: { url: target.url, maxRetriesPerRequest: null } };
  const owned = new Cluster(target.nodes, { ...clusterOptions(target, { maxRetriesPerRequest: null, connectTimeout: 5000 }), lazyConnect: true });
  return { connection: owned, owned };
}
