import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import { AppConfig } from '@app/config';
import { MailjetEventRepository } from '@app/database';
import {
  FORWARD_EVENT_JOB,
  forwardEventJobId,
  forwardEventJobOptions,
  ForwardEventJobData,
  MAILJET_EVENTS_QUEUE,
} from '@app/queue';

/**
 * Queues committed events, one job per event with a deterministic id, and marks them queued.
 * A failure here loses nothing: the rows stay `received` and the recovery loop queues them.
 */
@Injectable()
export class EventEnqueuer implements OnApplicationShutdown {
  private readonly logger = new Logger(EventEnqueuer.name);
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    @InjectQueue(MAILJET_EVENTS_QUEUE) private readonly queue: Queue<ForwardEventJobData>,
    private readonly events: MailjetEventRepository,
    private readonly config: AppConfig,
  ) {}

  /** Queues and marks; rejects when Redis or PostgreSQL fails, with the rows left `received`. */
  async enqueue(eventIds: readonly bigint[]): Promise<void> {
    if (eventIds.length === 0) return;
    const options = forwardEventJobOptions(this.config.retryPolicy);
    await this.queue.addBulk(
      eventIds.map((id) => ({
        name: FORWARD_EVENT_JOB,
        data: { eventId: id.toString() },
        opts: { ...options, jobId: forwardEventJobId(id) },
      })),
    );
    await this.events.markQueued(eventIds);
  }

  /**
   * Queues events again (admin requeue, recovery): a job of an earlier round (failed, or
   * completed) still holds the event's job id and would make the add a no-op, so it goes first.
   * An active job cannot be removed; it is already on its way.
   */
  async requeue(eventIds: readonly bigint[]): Promise<void> {
    await Promise.all(eventIds.map((id) => this.queue.remove(forwardEventJobId(id))));
    await this.enqueue(eventIds);
  }

  /** For the request path: queues without holding up the answer; the outbox row covers a failure. */
  enqueueInBackground(eventIds: readonly bigint[]): void {
    const attempt = this.enqueue(eventIds).catch((error: Error) => {
      this.logger.warn(
        `could not queue ${eventIds.length} stored event(s), the recovery loop will: ${error.message}`,
      );
    });
    this.inFlight.add(attempt);
    void attempt.finally(() => this.inFlight.delete(attempt));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.inFlight);
  }
}
