import { TimeoutError } from '@app/common';

/** Said before a queue call is made while the api's Redis connection is not up (BullMQ would wait for it). */
export class RedisNotConnectedError extends Error {
  constructor(status: string) {
    super(`Redis is not connected (${status})`);
    this.name = 'RedisNotConnectedError';
  }
}

/**
 * ioredis's errors for a command that cannot reach Redis (the api's client fails at once rather than
 * queue it); on a cluster, also those of a cluster without a usable map of its slots, or failing over
 * (a dead master's slots until its replica is promoted): the same outage, for a while.
 */
const REDIS_UNAVAILABLE = new RegExp(
  [
    "Stream isn't writeable",
    'Connection is closed',
    'max retries per request',
    'enableOfflineQueue',
    'Failed to refresh slots cache',
    'None of startup nodes is available',
    'Too many Cluster redirections',
    'Cluster is (disconnected|disconnecting|ended)',
    'Node is disconnected',
    '^(CLUSTERDOWN|MASTERDOWN|TRYAGAIN)\\b',
  ].join('|'),
  'i',
);

/**
 * Whether an error says Redis is unreachable, not that a command is wrong. Read by shape, not
 * `instanceof Error`: errors made by Node itself come from another realm under Jest. Socket codes
 * (ECONNREFUSED, ...) are left out: PostgreSQL's driver says them too.
 */
export function isRedisUnavailable(error: unknown): boolean {
  if (error instanceof RedisNotConnectedError) return true;
  if (error instanceof TimeoutError) return error.what === 'Redis';
  if (typeof error !== 'object' || error === null) return false;
  const { name, message } = error as { name?: unknown; message?: unknown };
  return name === 'MaxRetriesPerRequestError' || (typeof message === 'string' && REDIS_UNAVAILABLE.test(message));
}
