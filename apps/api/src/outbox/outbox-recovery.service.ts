import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { IngestEventRepository } from '@app/database';
import { EventEnqueuer } from './event-enqueuer.service';

const RECOVERY_INTERVAL_MS = 5000;
// A row younger than this may still be on its way to Redis from the request that stored it.
const GRACE_MS = 5000;
const BATCH_SIZE = 1000;

/**
 * Queues committed events that never reached Redis: it was down, the process died between
 * commit and enqueue, or an admin requeue could not reach it. A row is `received` until its job
 * is added, and job ids are deterministic, so a row queued twice is still one job.
 */
@Injectable()
export class OutboxRecoveryService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(OutboxRecoveryService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly events: IngestEventRepository,
    private readonly enqueuer: EventEnqueuer,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.recover()
        .then(() => undefined)
        .catch((error: Error) => this.logger.warn(`recovery pass failed, next in ${RECOVERY_INTERVAL_MS} ms: ${error.message}`))
        .finally(() => (this.running = undefined));
    }, RECOVERY_INTERVAL_MS);
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass: queues every stranded row, a batch at a time; returns how many it queued. */
  async recover(): Promise<number> {
    let recovered = 0;
    for (;;) {
      const ids = await this.events.findUnqueued(GRACE_MS, BATCH_SIZE);
      if (ids.length === 0) break;
      await this.enqueuer.requeue(ids);
      recovered += ids.length;
      if (ids.length < BATCH_SIZE) break;
    }
    if (recovered > 0) this.logger.log(`queued ${recovered} stored event(s) that had not reached Redis`);
    return recovered;
  }
}
