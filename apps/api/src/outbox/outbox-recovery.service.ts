import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { IngestEventRepository } from '@app/database';
import { EventEnqueuer } from './event-enqueuer.service';

const RECOVERY_INTERVAL_MS = 5000;
// A row younger than this may still be on its way to Redis from the request that stored it.
const GRACE_MS = 5000;
const BATCH_SIZE = 1000;
// The sweep reads every long-queued row (a backlog during an outage): at least this often, and
// every QUEUE_SWEEP_AFTER_SECONDS / 2 when that is shorter.
const MAX_SWEEP_INTERVAL_MS = 60_000;

/**
 * Moves committed events into the queue where the normal path did not:
 * - recovery: `received` rows never reached Redis (it was down, the process died between commit
 *   and enqueue, or an admin requeue could not reach it);
 * - sweep: `queued` rows whose job Redis no longer has (it restarted without its data, failed
 *   over to a replica that was behind, or someone emptied the queue);
 * - unpark: `queued` rows parked while their source was paused, once it is resumed (resuming does
 *   it at once; this catches what a worker parked a moment after).
 * Each row names its job before the job is added, so adding it twice is still one job.
 */
@Injectable()
export class OutboxRecoveryService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(OutboxRecoveryService.name);
  private readonly sweepIntervalMs: number;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private lastSweep = Date.now();

  constructor(
    private readonly events: IngestEventRepository,
    private readonly enqueuer: EventEnqueuer,
    private readonly config: AppConfig,
  ) {
    this.sweepIntervalMs = Math.min(Math.max(config.queueSweepAfterMs / 2, 1000), MAX_SWEEP_INTERVAL_MS);
  }

  onApplicationBootstrap(): void {
    const tick = Math.min(RECOVERY_INTERVAL_MS, this.sweepIntervalMs);
    this.timer = setInterval(() => (this.running ??= this.pass().finally(() => (this.running = undefined))), tick);
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async pass(): Promise<void> {
    try {
      await this.recover();
      await this.unpark();
      if (Date.now() - this.lastSweep >= this.sweepIntervalMs) {
        this.lastSweep = Date.now();
        await this.sweep();
      }
    } catch (error) {
      this.logger.warn(`outbox pass failed, next in ${RECOVERY_INTERVAL_MS} ms: ${(error as Error).message}`);
    }
  }

  /** Queues every stranded `received` row, a batch at a time; returns how many it queued. */
  async recover(): Promise<number> {
    let recovered = 0;
    for (;;) {
      const ids = await this.events.findUnqueued(GRACE_MS, BATCH_SIZE);
      if (ids.length === 0) break;
      recovered += await this.enqueuer.queueReceived(ids, 'recovery');
      if (ids.length < BATCH_SIZE) break;
    }
    if (recovered > 0) this.logger.log(`queued ${recovered} stored event(s) that had not reached Redis`);
    return recovered;
  }

  /** Queues the parked events of sources that are not paused (of one source only, given `sourceId`); returns how many. */
  async unpark(sourceId: number | null = null): Promise<number> {
    let resumed = 0;
    let after = 0n;
    for (;;) {
      const parked = await this.events.findParked(after, BATCH_SIZE, sourceId);
      if (parked.length === 0) break;
      resumed += await this.enqueuer.restoreLostJobs(parked, 'resume');
      after = parked[parked.length - 1].id;
      if (parked.length < BATCH_SIZE) break;
    }
    if (resumed > 0) this.logger.log(`queued ${resumed} event(s) of resumed source(s)`);
    return resumed;
  }

  /** Adds the jobs that Redis lost for rows `queued` longer than QUEUE_SWEEP_AFTER_SECONDS; returns how many. */
  async sweep(): Promise<number> {
    let restored = 0;
    let after = 0n;
    for (;;) {
      const queued = await this.events.findQueuedBefore(this.config.queueSweepAfterMs, after, BATCH_SIZE);
      if (queued.length === 0) break;
      restored += await this.enqueuer.restoreLostJobs(queued);
      after = queued[queued.length - 1].id;
      if (queued.length < BATCH_SIZE) break;
    }
    if (restored > 0) this.logger.warn(`queued again ${restored} event(s) whose jobs Redis no longer had`);
    return restored;
  }
}
