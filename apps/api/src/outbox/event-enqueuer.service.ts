import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import { withTimeout } from '@app/common';
import { AppConfig } from '@app/config';
import { EventJob, IngestEventRepository, QueuedEvent } from '@app/database';
import {
  RedisNotConnectedError,
  encodeEventIds,
  FORWARD_EVENTS_JOB,
  ForwardEventsJobData,
  forwardEventsJobOptions,
  JobOrigin,
  MAILJET_EVENTS_QUEUE,
  MAX_EVENTS_PER_JOB,
  PARKED_JOB_ID,
  REDIS_CONNECTION,
  RedisClient,
} from '@app/queue';

// BullMQ waits for its connection forever when Redis was away as it started: a callback's
// transaction must not. A queue call is not made while the connection is down, and one that
// hangs on a connection that looked up gives up after this long (a 30,000-event callback's
// jobs take a few seconds to add).
const QUEUE_TIMEOUT_MS = 10_000;

function chunksOf<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/**
 * Adds the jobs of stored events: one job per group of up to MAX_EVENTS_PER_JOB events, whose id
 * is written on the events' rows first, so that adding it again is a no-op and only that job
 * forwards them. A failure here loses nothing: rows left `received` are queued by the recovery
 * loop, rows `queued` under a job Redis does not have are queued again by the sweep.
 */
@Injectable()
export class EventEnqueuer {
  constructor(
    @InjectQueue(MAILJET_EVENTS_QUEUE) private readonly queue: Queue<ForwardEventsJobData>,
    private readonly events: IngestEventRepository,
    private readonly config: AppConfig,
    @Inject(REDIS_CONNECTION) private readonly redis: RedisClient,
  ) {}

  /** Adds jobs whose ids the events' rows already name. */
  async addJobs(jobs: readonly EventJob[]): Promise<void> {
    if (jobs.length === 0) return;
    if (this.redis.status !== 'ready') throw new RedisNotConnectedError(this.redis.status);
    const options = forwardEventsJobOptions(this.config.retryPolicy);
    const adding = this.queue.addBulk(
      jobs.map((job) => ({
        name: FORWARD_EVENTS_JOB,
        data: { events: encodeEventIds(job.eventIds), count: job.eventIds.length, source: job.sourceId },
        opts: { ...options, jobId: job.jobId },
      })),
    );
    await withTimeout(adding, QUEUE_TIMEOUT_MS, 'Redis');
  }

  /**
   * Queues `received` events (admin requeue, recovery) in new jobs; answers how many it queued.
   * Rejects when Redis or PostgreSQL fails, with the events of the job it could not add back to
   * `received` where PostgreSQL allows.
   */
  async queueReceived(eventIds: readonly bigint[], origin: JobOrigin): Promise<number> {
    let queued = 0;
    for (const ids of chunksOf(eventIds, MAX_EVENTS_PER_JOB)) {
      const jobs = await this.events.assignJob(ids, origin);
      try {
        await this.addJobs(jobs);
      } catch (error) {
        for (const job of jobs) await this.events.releaseJob(job).catch(() => undefined);
        throw error;
      }
      queued += jobs.reduce((sum, job) => sum + job.eventIds.length, 0);
    }
    return queued;
  }

  /**
   * Queues again, in new jobs, the `queued` events whose job Redis no longer has, or has finished
   * (completed or failed) without settling them; answers how many. Jobs still to run are left
   * alone: their retries and delays go on.
   */
  async restoreLostJobs(events: readonly QueuedEvent[], origin: JobOrigin = 'sweep'): Promise<number> {
    const jobIds = [...new Set(events.map((event) => event.jobId))];
    if (jobIds.length === 0) return 0;
    const [completed, failed] = [this.queue.toKey('completed'), this.queue.toKey('failed')];
    const answers = await this.redis
      .pipeline(jobIds.flatMap((jobId) => [['exists', this.queue.toKey(jobId)], ['zscore', completed, jobId], ['zscore', failed, jobId]]))
      .exec();
    const answer = (index: number): unknown => {
      const [error, value] = answers?.[index] ?? [new Error('no answer from Redis')];
      if (error) throw error;
      return value;
    };
    const lost = new Set(
      jobIds.filter(
        (jobId, index) =>
          jobId === PARKED_JOB_ID || answer(3 * index) === 0 || answer(3 * index + 1) !== null || answer(3 * index + 2) !== null,
      ),
    );
    const stranded = events.filter((event) => lost.has(event.jobId)).map((event) => event.id);
    let restored = 0;
    for (const ids of chunksOf(stranded, MAX_EVENTS_PER_JOB)) {
      const jobs = await this.events.moveToJob(ids, [...lost], origin);
      // Should this fail, the rows name a job Redis does not have: the next sweep moves them again.
      await this.addJobs(jobs);
      restored += jobs.reduce((sum, job) => sum + job.eventIds.length, 0);
    }
    return restored;
  }
}
