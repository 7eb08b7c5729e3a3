import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Job, UnrecoverableError } from 'bullmq';
import { AppConfig } from '@app/config';
import { MAILJET_EVENTS_QUEUE, segmentBackoffStrategy, validateForwardEventJobData } from '@app/queue';
import { ForwardOutcome, SegmentForwardingService } from './segment-forwarding.service';

/** Active jobs get this long to finish on SIGTERM before they are handed back to the queue. */
export const SHUTDOWN_DEADLINE_MS = 25_000;

@Processor(MAILJET_EVENTS_QUEUE, {
  // A job whose worker died is picked up again; it must not be failed for stalling a few times.
  maxStalledCount: 10,
  settings: { backoffStrategy: segmentBackoffStrategy },
})
export class SegmentForwardingProcessor extends WorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(SegmentForwardingProcessor.name);

  constructor(
    private readonly forwarding: SegmentForwardingService,
    private readonly config: AppConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.workerConcurrency;
  }

  /** Thin on purpose: every failure is rethrown so that BullMQ's retry policy runs. */
  async process(job: Job): Promise<ForwardOutcome> {
    let eventId: string;
    try {
      ({ eventId } = validateForwardEventJobData(job.data));
    } catch (error) {
      throw new UnrecoverableError((error as Error).message);
    }
    const outcome = await this.forwarding.forward(BigInt(eventId), {
      number: job.attemptsMade + 1,
      max: job.opts.attempts ?? 1,
    });
    this.logger.debug(`event ${eventId}: ${outcome} (attempt ${job.attemptsMade + 1})`);
    return outcome;
  }

  @OnWorkerEvent('failed')
  onFailed(job: Job | undefined, error: Error): void {
    this.logger.warn(`job ${job?.id ?? '?'} attempt ${job?.attemptsMade ?? '?'} failed: ${error.message}`);
  }

  /** SIGTERM: finish active jobs within the deadline, else hand them back (they are retried). */
  async beforeApplicationShutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), SHUTDOWN_DEADLINE_MS);
    });
    const result = await Promise.race([this.worker.close(), deadline]);
    clearTimeout(timer);
    if (result === 'deadline') {
      this.logger.warn(`active jobs did not finish within ${SHUTDOWN_DEADLINE_MS} ms; handing them back to the queue`);
      await this.worker.close(true);
    }
  }
}
