import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, OnModuleInit } from '@nestjs/common';
import { Queue } from 'bullmq';
import { withTimeout } from '@app/common';
import { PrismaService } from '@app/database';
import { MAILJET_EVENTS_QUEUE } from '@app/queue';
import { SourceDirectory } from '@app/sources';
import { BridgeMetrics, GaugeReading } from './bridge-metrics.service';

/** A reading this fresh is served again: N scrapes a second cost one look. */
const CACHE_MS = 5_000;
/** A look that takes longer is abandoned: the scrape answers with the last values. */
const READ_DEADLINE_MS = 1_000;
const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;

// The oldest pending event of each source, from the (status, id) index: ids grow with time.
const OLDEST_PENDING = `
  select s.id, extract(epoch from now() - least(
           (select received_at from mailjet_events where status = 'received' and source_id = s.id order by id limit 1),
           (select received_at from mailjet_events where status = 'queued' and source_id = s.id order by id limit 1)))::float8 as age
  from sources s where s.deleted_at is null`;

/**
 * A reading of shared state, cached for CACHE_MS and bounded by READ_DEADLINE_MS, so that every
 * replica reports the same value and a slow database or Redis never makes a scrape hang.
 */
export function cachedReading(read: () => Promise<GaugeReading>): () => Promise<GaugeReading | undefined> {
  let last: { at: number; reading: GaugeReading } | undefined;
  let pending: Promise<GaugeReading | undefined> | undefined;
  return () => {
    if (last && Date.now() - last.at < CACHE_MS) return Promise.resolve(last.reading);
    pending ??= withTimeout(read(), READ_DEADLINE_MS, 'a metrics reading')
      .then((reading) => {
        last = { at: Date.now(), reading };
        return reading;
      })
      .catch(() => undefined)
      .finally(() => (pending = undefined));
    return pending;
  };
}

/** The gauges both processes show: jobs by state (Redis), the age of each source's oldest pending event (PostgreSQL). */
@Injectable()
export class SharedStateGauges implements OnModuleInit {
  constructor(
    private readonly metrics: BridgeMetrics,
    @InjectQueue(MAILJET_EVENTS_QUEUE) private readonly queue: Queue,
    private readonly prisma: PrismaService,
    private readonly sources: SourceDirectory,
  ) {}

  onModuleInit(): void {
    this.metrics.sharedGauge(
      'msb_queue_jobs',
      'Jobs of the forwarding queue by state (each job carries up to 100 events)',
      ['state'],
      cachedReading(async () => {
        const counts = await this.queue.getJobCounts(...JOB_STATES);
        return JOB_STATES.map((state) => ({ labels: { state }, value: counts[state] ?? 0 }));
      }),
    );
    this.metrics.sharedGauge(
      'msb_oldest_pending_age_seconds',
      'Age of the oldest event of each source not yet forwarded (received or queued); 0 when there is none',
      ['source'],
      cachedReading(async () => {
        const { rows } = await this.prisma.pool.query<{ id: number; age: number | null }>(OLDEST_PENDING);
        return rows.flatMap(({ id, age }) => {
          const slug = this.sources.byId(id)?.slug;
          return slug ? [{ labels: { source: slug }, value: Math.max(0, age ?? 0) }] : [];
        });
      }),
    );
  }
}
