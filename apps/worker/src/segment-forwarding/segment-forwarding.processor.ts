import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DelayedError, Job, UnrecoverableError } from 'bullmq';
import { TimeoutError, withTimeout } from '@app/common';
import { isDatabaseUnavailable } from '@app/database';
import { AppConfig } from '@app/config';
import { ForwardEventsJob, ForwardEventsJobData, logQueueError, MAILJET_EVENTS_QUEUE, segmentBackoffStrategy, validateForwardEventsJobData } from '@app/queue';
import { SegmentDeliveryError } from '@app/segment';
import {
  DeliveredButNotRecordedError,
  DestinationWaitError,
  EventsNotFoundError,
  JobOutcome,
  SegmentForwardingService,
} from './segment-forwarding.service';

/** Active jobs get this long to finish on SIGTERM before they are handed back to the queue. */
export const SHUTDOWN_DEADLINE_MS = 25_000;
/** Then this long to hand them back; the pod's grace period covers both (deploy/kubernetes). */
export const FORCED_CLOSE_DEADLINE_MS = 3_000;
const DATABASE_RETRY_MS = 1000;
// The api adds a job a moment before its events commit: a worker that was quicker looks again soon.
const NOT_COMMITTED_RETRY_MS = 100;
// A job may run before its events' transaction commits; after this long, that commit never came.
const ROLLED_BACK_AFTER_MS = 60_000;

@Processor(MAILJET_EVENTS_QUEUE, {
  // A job whose worker died is picked up again within about 15 s; stalling a few times must not fail it.
  lockDuration: 15_000,
  stalledInterval: 15_000,
  maxStalledCount: 10,
  settings: { backoffStrategy: segmentBackoffStrategy },
})
export class SegmentForwardingProcessor extends WorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(SegmentForwardingProcessor.name);
  private readonly queueLogger = new Logger('BullMQ');

  constructor(
    private readonly forwarding: SegmentForwardingService,
    private readonly config: AppConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.workerConcurrency;
  }

  /**
   * Thin on purpose: every failure reaches BullMQ. A failed delivery to Segment counts as an
   * attempt; our own PostgreSQL being unreachable, or the events not being committed yet, does
   * not (SEGMENT_MAX_ATTEMPTS counts deliveries), so the job goes back to the delayed set
   * without spending one.
   */
  async process(job: Job, token?: string): Promise<JobOutcome> {
    let events: ForwardEventsJob;
    try {
      events = validateForwardEventsJobData(job.data);
    } catch (error) {
      throw new UnrecoverableError((error as Error).message);
    }
    const jobId = job.id!;
    let outcome: JobOutcome;
    let retryInMs = DATABASE_RETRY_MS;
    try {
      outcome = await this.forwarding.forward(jobId, events, { number: job.attemptsMade + 1, max: job.opts.attempts ?? 1 });
    } catch (error) {
      if (error instanceof DestinationWaitError) {
        this.logger.debug(`job ${jobId}: ${error.message}; back at ${new Date(error.retryAt).toISOString()}`);
        await job.moveToDelayed(error.retryAt, token);
        throw new DelayedError();
      }
      if (error instanceof EventsNotFoundError) {
        if (Date.now() - job.timestamp > ROLLED_BACK_AFTER_MS) {
          throw new UnrecoverableError(`${error.message}: their callback was not committed (the api answered it with an error)`);
        }
        retryInMs = NOT_COMMITTED_RETRY_MS;
      } else if (error instanceof DeliveredButNotRecordedError) {
        await job.updateData({ ...(job.data as ForwardEventsJobData), delivered: deliveredOf(job.data, error.delivered) });
        // Remembered either way; only an outage waits without spending an attempt.
        if (!isDatabaseUnavailable(error.cause)) throw error;
      } else if (error instanceof SegmentDeliveryError || !isDatabaseUnavailable(error)) {
        // A Segment that cannot be reached says ECONNREFUSED too; that is a delivery attempt.
        throw error;
      }
      const message = `job ${jobId}: retrying without spending an attempt: ${(error as Error).message}`;
      if (retryInMs === NOT_COMMITTED_RETRY_MS) this.logger.debug(message);
      else this.logger.warn(message);
      await job.moveToDelayed(Date.now() + retryInMs + Math.random() * retryInMs, token);
      throw new DelayedError();
    }
    this.logger.debug(`job ${jobId} (attempt ${job.attemptsMade + 1}): ${JSON.stringify(outcome)}`);
    return outcome;
  }

  /** Attached as the worker is made: a Redis that is away at start is reported in one line, not a stack. */
  @OnWorkerEvent('error')
  onError(error: Error): void {
    logQueueError(this.queueLogger, `worker ${MAILJET_EVENTS_QUEUE}`, error);
  }

  @OnWorkerEvent('failed')
  onFailed(job: Job | undefined, error: Error): void {
    this.logger.warn(`job ${job?.id ?? '?'} attempt ${job?.attemptsMade ?? '?'} failed: ${error.message}`);
  }

  /** SIGTERM: finish active jobs within the deadline, else hand them back (they are retried). */
  async beforeApplicationShutdown(): Promise<void> {
    if (await closesWithin(this.worker.close(), SHUTDOWN_DEADLINE_MS)) return;
    this.logger.warn(
      `the worker did not close within ${SHUTDOWN_DEADLINE_MS} ms (jobs still active, or Redis unreachable); handing active jobs back to the queue`,
    );
    // Forcing needs Redis too: without it, the jobs' locks expire and another worker takes them.
    if (!(await closesWithin(this.worker.close(true), FORCED_CLOSE_DEADLINE_MS))) {
      this.logger.warn(`the queue connection did not close within ${FORCED_CLOSE_DEADLINE_MS} ms; exiting without it`);
    }
  }
}

/** Whether `closing` ended within `ms`; a close that fails says so (it is not taken for a success). */
async function closesWithin(closing: Promise<void>, ms: number): Promise<boolean> {
  try {
    await withTimeout(closing, ms, 'the worker');
    return true;
  } catch (error) {
    if (error instanceof TimeoutError) return false;
    throw error;
  }
}

/** The job's record of deliveries, with the new ones added; a legacy job (one event) gets the new shape's field. */
function deliveredOf(data: unknown, delivered: Map<bigint, string>): Record<string, string> {
  const earlier = (data as Partial<ForwardEventsJobData>).delivered ?? {};
  return { ...earlier, ...Object.fromEntries([...delivered].map(([id, messageId]) => [id.toString(), messageId])) };
}
