import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { DroppedPartition, EventPartitionRepository, TransactionRunner } from '@app/database';

/** Partitions are made this many months ahead of the current one. */
export const MONTHS_AHEAD = 3;
const DAY_MS = 24 * 60 * 60_000;
// After a failure (PostgreSQL away, a lock not had in time): soon, not tomorrow.
const RETRY_MS = 10 * 60_000;

/** What one pass did; `busy` when another process held the partitions' lock. */
export interface PartitionUpkeep {
  busy: boolean;
  created: string[];
  dropped: DroppedPartition[];
  /** Partitions past EVENT_RETENTION_DAYS kept because they hold `received` or `queued` events. */
  kept: string[];
}

/**
 * Upkeep of mailjet_events' monthly partitions, at start and then daily, in every api process (the
 * advisory lock lets one of them work at a time): makes the partitions of the coming months before
 * events need them (one a month late would leave its events in the default partition, which works
 * but is the slow path), and with EVENT_RETENTION_DAYS drops the months past it.
 */
@Injectable()
export class EventPartitionsService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(EventPartitionsService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<PartitionUpkeep>;
  private stopped = false;

  constructor(
    private readonly partitions: EventPartitionRepository,
    private readonly transactions: TransactionRunner,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass; a call while one runs shares it. */
  upkeep(): Promise<PartitionUpkeep> {
    return (this.running ??= this.pass().finally(() => (this.running = undefined)));
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.upkeep().then(
        () => this.stopped || this.schedule(DAY_MS),
        (error: Error) => {
          this.logger.warn(`partition upkeep failed, next try in ${RETRY_MS / 60_000} minutes: ${error.message}`);
          if (!this.stopped) this.schedule(RETRY_MS);
        },
      );
    }, delayMs);
  }

  private async pass(): Promise<PartitionUpkeep> {
    const upkeep: PartitionUpkeep = { busy: false, created: [], dropped: [], kept: [] };
    const created = await this.transactions.run(async (tx) =>
      (await this.partitions.lock(tx)) ? this.partitions.ensureAhead(tx, MONTHS_AHEAD) : null,
    );
    if (created === null) return { ...upkeep, busy: true };
    upkeep.created = created;
    if (created.length > 0) this.logger.log(`made event partition(s) ${created.join(', ')}`);

    const retentionDays = this.config.eventRetentionDays;
    if (retentionDays === undefined) return upkeep;
    // One partition per transaction: each drop holds mailjet_events only for its own few lookups.
    for (;;) {
      const dropped = await this.transactions.run(async (tx) =>
        (await this.partitions.lock(tx)) ? this.partitions.dropOneExpired(tx, retentionDays) : null,
      );
      if (dropped === null) break;
      upkeep.dropped.push(dropped);
      this.logger.log(`dropped event partition ${dropped.partition}: ${dropped.events} event(s) older than ${retentionDays} days`);
    }
    upkeep.kept = await this.partitions.expired(retentionDays);
    if (upkeep.kept.length > 0) {
      this.logger.warn(
        `kept event partition(s) ${upkeep.kept.join(', ')} past EVENT_RETENTION_DAYS: they hold received or queued events (GET /admin/status)`,
      );
    }
    return upkeep;
  }
}
