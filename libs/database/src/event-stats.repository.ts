import { Injectable } from '@nestjs/common';
import { EventStatus } from './generated/prisma/enums';
import { PrismaService } from './prisma.service';

export interface EventStats {
  counts: Array<{ status: EventStatus; eventType: string; count: number }>;
  oldestPendingReceivedAt: Date | null;
  forwardedLastMinute: number;
  forwardedLastHour: number;
  recentFailureReasons: Array<{ reason: string; count: number }>;
}

// The reasons of this many most recent failures are grouped for the status page.
const RECENT_FAILURES = 1000;

/**
 * Figures for GET /admin/status, each from maintained counters or an index, so that the answer
 * stays cheap on millions of events (see the status_counters migration).
 */
@Injectable()
export class EventStatsRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Of every source, or of one. */
  async stats(sourceId: number | null = null): Promise<EventStats> {
    await this.prisma.$executeRaw`select fold_event_counts()`;
    const [counts, [pending], [forwarded], recentFailureReasons] = await Promise.all([
      this.prisma.$queryRaw<EventStats['counts']>`
        select status, event_type as "eventType", sum(count)::float8 as count from event_counts
        where count <> 0 and (${sourceId}::int is null or source_id = ${sourceId})
        group by status, event_type order by status, event_type`,
      // Ids grow with time: the lowest pending id, per status, from the (status, id) index.
      this.prisma.$queryRaw<Array<{ oldest: Date | null }>>`
        select least(
          (select received_at from mailjet_events where status = 'received' and (${sourceId}::int is null or source_id = ${sourceId})
           order by id limit 1),
          (select received_at from mailjet_events where status = 'queued' and (${sourceId}::int is null or source_id = ${sourceId})
           order by id limit 1)) as oldest`,
      this.prisma.$queryRaw<Array<{ lastMinute: number; lastHour: number }>>`
        select coalesce(sum(count) filter (where second > now() - interval '1 minute'), 0)::float8 as "lastMinute",
               coalesce(sum(count), 0)::float8 as "lastHour"
        from forwarded_per_second where second > now() - interval '1 hour' and (${sourceId}::int is null or source_id = ${sourceId})`,
      this.prisma.$queryRaw<EventStats['recentFailureReasons']>`
        select coalesce(last_error, '(no reason recorded)') as reason, count(*)::float8 as count
        from (select last_error from mailjet_events where status = 'failed' and (${sourceId}::int is null or source_id = ${sourceId})
              order by id desc limit ${RECENT_FAILURES}) recent
        group by 1 order by 2 desc, 1 limit 5`,
    ]);
    return {
      counts,
      oldestPendingReceivedAt: pending.oldest,
      forwardedLastMinute: forwarded.lastMinute,
      forwardedLastHour: forwarded.lastHour,
      recentFailureReasons,
    };
  }
}
