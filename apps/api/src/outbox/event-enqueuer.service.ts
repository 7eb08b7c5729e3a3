import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { withTimeout } from '@app/common';
import { AppConfig } from '@app/config';
import { IngestEventRepository } from '@app/database';
import {
  FORWARD_EVENT_JOB,
  forwardEventJobId,
  forwardEventJobOptions,
  ForwardEventJobData,
  MAILJET_EVENTS_QUEUE,
  REDIS_CONNECTION,
} from '@app/queue';

// BullMQ waits for its connection forever when Redis was away as it started: a callback's
// transaction must not (it would hold a pool connection, and the answer, until Redis comes).
const QUEUE_TIMEOUT_MS = 2000;

/**
 * Adds the jobs of stored events, one per event with a deterministic id. A failure here loses
 * nothing: the rows are `received` and the recovery loop queues them.
 */
@Injectable()
export class EventEnqueuer {
  constructor(
    @InjectQueue(MAILJET_EVENTS_QUEUE) private readonly queue: Queue<ForwardEventJobData>,
    private readonly events: IngestEventRepository,
    private readonly config: AppConfig,
    @Inject(REDIS_CONNECTION) private readonly redis: Redis,
  ) {}

  /** Adds one job per event; the caller records the events as queued. */
  async addJobs(eventIds: readonly bigint[]): Promise<void> {
    if (eventIds.length === 0) return;
    const options = forwardEventJobOptions(this.config.retryPolicy);
    const adding = this.queue.addBulk(
      eventIds.map((id) => ({
        name: FORWARD_EVENT_JOB,
        data: { eventId: id.toString() },
        opts: { ...options, jobId: forwardEventJobId(id) },
      })),
    );
    await withTimeout(adding, QUEUE_TIMEOUT_MS, 'Redis');
  }

  /** Queues `received` events and marks them; rejects when Redis or PostgreSQL fails, with the rows left `received`. */
  async enqueue(eventIds: readonly bigint[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.addJobs(eventIds);
    await this.events.markQueued(eventIds);
  }

  /**
   * Adds the jobs of `queued` events that Redis lost, and answers how many it added. The jobs
   * that exist are left alone: their retries and delays go on.
   */
  async restoreLostJobs(eventIds: readonly bigint[]): Promise<number> {
    if (eventIds.length === 0) return 0;
    const exists = await this.redis.pipeline(eventIds.map((id) => ['exists', this.queue.toKey(forwardEventJobId(id))])).exec();
    const lost = eventIds.filter((_, index) => {
      const [error, found] = exists?.[index] ?? [new Error('no answer')];
      if (error) throw error;
      return found === 0;
    });
    await this.addJobs(lost);
    return lost.length;
  }

  /**
   * Queues events again (admin requeue, recovery): a job of an earlier round (failed, or
   * completed) still holds the event's job id and would make the add a no-op, so it goes first.
   * An active job cannot be removed; it is already on its way.
   */
  async requeue(eventIds: readonly bigint[]): Promise<void> {
    await withTimeout(Promise.all(eventIds.map((id) => this.queue.remove(forwardEventJobId(id)))), QUEUE_TIMEOUT_MS, 'Redis');
    await this.enqueue(eventIds);
  }
}
