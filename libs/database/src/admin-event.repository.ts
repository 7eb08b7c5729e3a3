import { Injectable } from '@nestjs/common';
import { Prisma } from './generated/prisma/client';
import { EventStatus } from './generated/prisma/enums';
import { PrismaService } from './prisma.service';
import { compareIds, StoredMailjetEvent } from './stored-event';

export interface EventFilter {
  sourceId?: number;
  status?: EventStatus;
  type?: string;
  email?: string;
  messageId?: string;
  /** Mailjet event time, inclusive. */
  from?: Date;
  /** Mailjet event time, exclusive. */
  to?: Date;
}

export interface EventSummary {
  id: bigint;
  sourceId: number;
  origin: 'webhook' | 'backfill';
  messageId: string | null;
  messageGuid: string | null;
  eventType: string;
  email: string | null;
  eventTime: Date | null;
  status: EventStatus;
  attempts: number;
  lastError: string | null;
  receivedAt: Date;
  forwardedAt: Date | null;
}

export interface EventDetail extends StoredMailjetEvent {
  sourceId: number;
  origin: 'webhook' | 'backfill';
  /** The job that carries (or carried) it; `event-<id>` for one queued by the version before group jobs. */
  jobId: string;
  lastError: string | null;
  segmentMessageId: string | null;
  duplicateOf: bigint | null;
  receivedAt: Date;
  queuedAt: Date | null;
  forwardedAt: Date | null;
}

function whereOf(filter: EventFilter): Prisma.MailjetEventWhereInput {
  return {
    sourceId: filter.sourceId,
    status: filter.status,
    eventType: filter.type,
    email: filter.email,
    messageId: filter.messageId,
    eventTime: filter.from || filter.to ? { gte: filter.from, lt: filter.to } : undefined,
  };
}

/**
 * The admin API's reads and requeues, through the Prisma client (its engine loads on the first
 * admin request). Raw SQL only where Prisma cannot say it: the payload as the exact text received,
 * and a requeue that takes rows with FOR UPDATE SKIP LOCKED.
 */
@Injectable()
export class AdminEventRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Newest first; `before` is the id of the last event of the previous page (keyset paging). */
  async list(filter: EventFilter, limit: number, before?: bigint): Promise<EventSummary[]> {
    return this.prisma.mailjetEvent.findMany({
      where: { ...whereOf(filter), id: before === undefined ? undefined : { lt: before } },
      orderBy: { id: 'desc' },
      take: limit,
      select: {
        id: true,
        sourceId: true,
        origin: true,
        messageId: true,
        messageGuid: true,
        eventType: true,
        email: true,
        eventTime: true,
        status: true,
        attempts: true,
        lastError: true,
        receivedAt: true,
        forwardedAt: true,
      },
    });
  }

  /** The payload as text: a `json` value read through Prisma would be parsed, rounding big MessageIDs. */
  async findDetail(id: bigint): Promise<EventDetail | null> {
    const [row] = await this.prisma.$queryRaw<EventDetail[]>`
      select id, source_id as "sourceId", origin::text as origin, payload::text as payload, event_type as "eventType", status, email, message_id as "messageId",
             extract(epoch from event_time)::float8 as "eventTime", dedupe_key as "dedupeKey", attempts,
             last_error as "lastError", segment_message_id as "segmentMessageId", duplicate_of as "duplicateOf",
             received_at as "receivedAt", queued_at as "queuedAt", forwarded_at as "forwardedAt",
             coalesce(job_id, 'event-' || id) as "jobId"
      from mailjet_events where id = ${id}`;
    return row ?? null;
  }

  /**
   * Moves matching events back to `received` (the outbox state), a batch at a time in id order,
   * and returns their ids; the caller queues them. `after` continues from the last batch, so that
   * an event that fails again meanwhile is not picked twice.
   */
  async takeForRequeue(filter: EventFilter & { status: EventStatus }, limit: number, after: bigint = 0n): Promise<bigint[]> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`
      update mailjet_events set status = 'received', updated_at = now()
      where id in (
        select id from mailjet_events
        where status = ${filter.status}::event_status and id > ${after}
          and (${filter.sourceId ?? null}::int is null or source_id = ${filter.sourceId ?? null})
          and (${filter.type ?? null}::text is null or event_type = ${filter.type ?? null})
          and (${filter.from ?? null}::timestamptz is null or event_time >= ${filter.from ?? null})
          and (${filter.to ?? null}::timestamptz is null or event_time < ${filter.to ?? null})
        order by id limit ${limit}
        for update skip locked)
      returning id`;
    return rows.map((row) => row.id).sort(compareIds);
  }

  /** `queued` events matching the filter, in id order after `after`, with their jobs: for a requeue that moves only stranded ones. */
  async findQueued(filter: EventFilter, after: bigint, limit: number): Promise<Array<{ id: bigint; jobId: string }>> {
    return this.prisma.$queryRaw<Array<{ id: bigint; jobId: string }>>`
      select id, coalesce(job_id, 'event-' || id) as "jobId" from mailjet_events
      where status = 'queued' and id > ${after}
        and (${filter.sourceId ?? null}::int is null or source_id = ${filter.sourceId ?? null})
        and (${filter.type ?? null}::text is null or event_type = ${filter.type ?? null})
        and (${filter.from ?? null}::timestamptz is null or event_time >= ${filter.from ?? null})
        and (${filter.to ?? null}::timestamptz is null or event_time < ${filter.to ?? null})
      order by id limit ${limit}`;
  }

  /** Moves one event back to `received` if its status is one of `from`; returns whether it did. */
  async takeOneForRequeue(id: bigint, from: readonly EventStatus[]): Promise<boolean> {
    const { count } = await this.prisma.mailjetEvent.updateMany({
      where: { id, status: { in: [...from] } },
      data: { status: EventStatus.received, updatedAt: new Date() },
    });
    return count === 1;
  }
}
