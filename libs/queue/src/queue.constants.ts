import { BackoffStrategy, JobsOptions } from 'bullmq';
import type { RetryPolicy } from '@app/config';

export const MAILJET_EVENTS_QUEUE = 'mailjet-events';
export const FORWARD_EVENT_JOB = 'forward-event';
export const SEGMENT_BACKOFF = 'segment-backoff';

/** What a forwarding job carries: only the id of the stored event, which is the source of truth. */
export interface ForwardEventJobData {
  eventId: string;
  /** Set when Segment accepted the event but PostgreSQL could not record it: not to be sent again. */
  deliveredMessageId?: string;
}

/** One job per stored event, ever: a second add with the same id is a no-op while the job exists. */
export function forwardEventJobId(eventId: bigint | string): string {
  return `event-${eventId}`;
}

const ONE_HOUR_MS = 60 * 60 * 1000;
const TWO_WEEKS_S = 14 * 24 * 60 * 60;

export function forwardEventJobOptions(retry: RetryPolicy): JobsOptions {
  return {
    attempts: retry.maxAttempts,
    backoff: { type: SEGMENT_BACKOFF, delay: retry.backoffMs },
    // Completed jobs are not needed (the row says forwarded); failed ones stay for the dashboard.
    removeOnComplete: { age: ONE_HOUR_MS / 1000, count: 10_000 },
    removeOnFail: { age: TWO_WEEKS_S, count: 100_000 },
  };
}

/**
 * Capped exponential backoff with jitter: attempt n waits between half and all of
 * `delay * 2^(n-1)`, at most one hour; a rate-limited attempt waits at least what Segment asked.
 */
export function segmentBackoffDelay(attemptsMade: number, baseDelayMs: number, error?: { retryAfterMs?: number }): number {
  const ceiling = Math.min(baseDelayMs * 2 ** Math.max(attemptsMade - 1, 0), ONE_HOUR_MS);
  const jittered = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  const retryAfter = error?.retryAfterMs;
  return typeof retryAfter === 'number' && retryAfter > 0 ? Math.min(retryAfter, ONE_HOUR_MS) : jittered;
}

/** The worker's strategy for `SEGMENT_BACKOFF` jobs: the base delay travels in each job's options. */
export const segmentBackoffStrategy: BackoffStrategy = (attemptsMade, _type, error, job) => {
  const backoff = job?.opts.backoff;
  const baseDelayMs = typeof backoff === 'object' && backoff.delay ? backoff.delay : 1000;
  return segmentBackoffDelay(attemptsMade, baseDelayMs, error as { retryAfterMs?: number } | undefined);
};
