import { BackoffStrategy, JobsOptions } from 'bullmq';
import type { RetryPolicy } from '@app/config';

export const MAILJET_EVENTS_QUEUE = 'mailjet-events';
export const FORWARD_EVENTS_JOB = 'forward-events';
export const SEGMENT_BACKOFF = 'segment-backoff';

/** Events in one job at most: a larger stored group travels as several jobs. */
export const MAX_EVENTS_PER_JOB = 100;

/**
 * What a forwarding job carries: the ids of its events, which PostgreSQL holds (the outbox).
 * Each event row names its job (`job_id`), and only that job forwards it.
 */
export interface ForwardEventsJobData {
  /** The event ids, as ranges (`encodeEventIds`). */
  events: string;
  /** How many events the job carries, for the dashboard. */
  count: number;
  /** The source of every event of the job (jobs queued before sources have none: the default source's). */
  source?: number;
  /** Event id -> Segment messageId, for events Segment accepted but PostgreSQL did not record: not to be sent again. */
  delivered?: Record<string, string>;
}

/** A job of the version before jobs carried groups: one event, job id `event-<id>`. Still taken. */
export interface LegacyForwardEventJobData {
  eventId: string;
  deliveredMessageId?: string;
}

/**
 * Where a job comes from, the first word of its id: `ingest-41-0`, `requeue-42-s1`,
 * `recovery-43-s1`, `sweep-44-s2`, `resume-45-s2` (`-s<n>`: the source).
 */
export type JobOrigin = 'ingest' | 'recovery' | 'requeue' | 'sweep' | 'resume';

/**
 * The job id a paused source's events wait under, `queued` (no job has it): the worker parks
 * them there, and resuming the source moves them to real jobs.
 */
export const PARKED_JOB_ID = 'paused';

const ONE_HOUR_MS = 60 * 60 * 1000;
const TWO_WEEKS_S = 14 * 24 * 60 * 60;

export function forwardEventsJobOptions(retry: RetryPolicy): JobsOptions {
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
 * `delay * 2^(n-1)`, at most one hour; a rate-limited attempt waits what Segment asked, up to an hour.
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
