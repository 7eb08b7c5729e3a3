import { Injectable } from '@nestjs/common';
import { MailjetEventRecord } from '@app/mailjet';
import { Prisma } from './generated/prisma/client';
import { EventStatus } from './generated/prisma/enums';
import { PrismaService } from './prisma.service';

/** What the worker reads of a stored event. */
export interface StoredMailjetEvent {
  id: bigint;
  /** The raw JSON text, exactly as received. */
  payload: string;
  eventType: string;
  status: EventStatus;
  email: string | null;
  messageId: string | null;
  eventTime: number | null;
  dedupeKey: string | null;
  attempts: number;
}

export interface EventFilter {
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
  lastError: string | null;
  segmentMessageId: string | null;
  duplicateOf: bigint | null;
  receivedAt: Date;
  queuedAt: Date | null;
  forwardedAt: Date | null;
}

function whereOf(filter: EventFilter): Prisma.MailjetEventWhereInput {
  return {
    status: filter.status,
    eventType: filter.type,
    email: filter.email,
    messageId: filter.messageId,
    eventTime: filter.from || filter.to ? { gte: filter.from, lt: filter.to } : undefined,
  };
}

@Injectable()
export class MailjetEventRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Stores the events of several callbacks in one statement, usable ones as `received` and junk
   * as `invalid` with its reason; returns, per callback, the ids of its usable events in order.
   */
  async insertReceivedGroups(groups: ReadonlyArray<readonly MailjetEventRecord[]>): Promise<bigint[][]> {
    const records = groups.flat();
    // Ids come from the sequence in insertion order, which follows the ordinality.
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint; status: string }>>`
      insert into mailjet_events
        (payload, event_type, event_time, email, message_id, message_guid, dedupe_key, status, last_error)
      select payload, event_type, to_timestamp(event_time), email, message_id, message_guid, dedupe_key,
             case when last_error is null then 'received' else 'invalid' end::event_status, last_error
      from unnest(
        ${records.map((r) => r.rawJson)}::json[],
        ${records.map((r) => r.eventType)}::text[],
        ${records.map((r) => r.time)}::bigint[],
        ${records.map((r) => r.email)}::text[],
        ${records.map((r) => r.messageId)}::text[],
        ${records.map((r) => r.messageGuid)}::text[],
        ${records.map((r) => r.dedupeKey)}::text[],
        ${records.map((r) => r.invalidReason)}::text[]
      ) with ordinality as e(payload, event_type, event_time, email, message_id, message_guid, dedupe_key, last_error, ord)
      order by ord
      returning id, status::text`;
    rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let offset = 0;
    return groups.map((group) => {
      const own = rows.slice(offset, offset + group.length);
      offset += group.length;
      return own.filter((row) => row.status === 'received').map((row) => row.id);
    });
  }

  /** Marks events queued; one that a worker already moved on is left as it is. */
  async markQueued(ids: readonly bigint[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.prisma.$executeRaw`
      update mailjet_events set status = 'queued', queued_at = now(), updated_at = now()
      where id = any(${ids as bigint[]}::bigint[]) and status = 'received'`;
  }

  /** Committed events that never reached the queue (Redis was down, or the process died in between). */
  async findUnqueued(olderThanMs: number, limit: number): Promise<bigint[]> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`
      select id from mailjet_events
      where status = 'received' and received_at < now() - make_interval(secs => ${olderThanMs / 1000}::float8)
      order by id limit ${limit}`;
    return rows.map((row) => row.id);
  }

  async findForForwarding(id: bigint): Promise<StoredMailjetEvent | null> {
    const [row] = await this.prisma.$queryRaw<StoredMailjetEvent[]>`
      select id, payload::text as payload, event_type as "eventType", status, email, message_id as "messageId",
             extract(epoch from event_time)::float8 as "eventTime", dedupe_key as "dedupeKey", attempts
      from mailjet_events where id = ${id}`;
    return row ?? null;
  }

  /**
   * Claims a dedupe key for an event and returns the event that owns it: this one, or the one that
   * claimed it first. The primary key of dedupe_keys decides between concurrent claims.
   */
  async claimDedupeKey(dedupeKey: string, eventId: bigint): Promise<bigint> {
    const inserted = await this.prisma.$queryRaw<Array<{ eventId: bigint }>>`
      insert into dedupe_keys (dedupe_key, event_id) values (${dedupeKey}, ${eventId})
      on conflict (dedupe_key) do nothing returning event_id as "eventId"`;
    if (inserted.length > 0) return inserted[0].eventId;
    // A separate statement: its snapshot sees the claim that made ours conflict.
    const [owner] = await this.prisma.$queryRaw<Array<{ eventId: bigint }>>`
      select event_id as "eventId" from dedupe_keys where dedupe_key = ${dedupeKey}`;
    return owner.eventId;
  }

  async markForwarded(id: bigint, segmentMessageId: string): Promise<void> {
    await this.prisma.$executeRaw`
      update mailjet_events
      set status = 'forwarded', attempts = attempts + 1, forwarded_at = now(), last_error = null,
          segment_message_id = ${segmentMessageId}, updated_at = now()
      where id = ${id}`;
  }

  async markDuplicate(id: bigint, ownerId: bigint): Promise<void> {
    await this.prisma.$executeRaw`
      update mailjet_events set status = 'duplicate', duplicate_of = ${ownerId}, updated_at = now()
      where id = ${id}`;
  }

  /** Counts a failed attempt with its reason; `final` when no attempt will follow. */
  async recordFailedAttempt(id: bigint, reason: string, final: boolean): Promise<void> {
    await this.prisma.$executeRaw`
      update mailjet_events
      set attempts = attempts + 1, last_error = ${reason}, updated_at = now(),
          status = (case when ${final} then 'failed' else 'queued' end)::event_status
      where id = ${id}`;
  }

  /** Newest first; `before` is the id of the last event of the previous page (keyset paging). */
  async list(filter: EventFilter, limit: number, before?: bigint): Promise<EventSummary[]> {
    return this.prisma.mailjetEvent.findMany({
      where: { ...whereOf(filter), id: before === undefined ? undefined : { lt: before } },
      orderBy: { id: 'desc' },
      take: limit,
      select: {
        id: true,
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

  async findDetail(id: bigint): Promise<EventDetail | null> {
    const [row] = await this.prisma.$queryRaw<EventDetail[]>`
      select id, payload::text as payload, event_type as "eventType", status, email, message_id as "messageId",
             extract(epoch from event_time)::float8 as "eventTime", dedupe_key as "dedupeKey", attempts,
             last_error as "lastError", segment_message_id as "segmentMessageId", duplicate_of as "duplicateOf",
             received_at as "receivedAt", queued_at as "queuedAt", forwarded_at as "forwardedAt"
      from mailjet_events where id = ${id}`;
    return row ?? null;
  }

  /**
   * Moves matching events back to `received` (the outbox state), a batch at a time in id order,
   * and returns their ids; the caller queues them. `after` continues from the last batch, so that
   * an event that fails again meanwhile is not picked twice.
   */
  async takeForRequeue(
    filter: EventFilter & { status: EventStatus },
    limit: number,
    after: bigint = 0n,
  ): Promise<bigint[]> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`
      update mailjet_events set status = 'received', updated_at = now()
      where id in (
        select id from mailjet_events
        where status = ${filter.status}::event_status and id > ${after}
          and (${filter.type ?? null}::text is null or event_type = ${filter.type ?? null})
          and (${filter.from ?? null}::timestamptz is null or event_time >= ${filter.from ?? null})
          and (${filter.to ?? null}::timestamptz is null or event_time < ${filter.to ?? null})
        order by id limit ${limit}
        for update skip locked)
      returning id`;
    return rows.map((row) => row.id).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Moves one event back to `received` if its status is one of `from`; returns whether it did. */
  async takeOneForRequeue(id: bigint, from: readonly EventStatus[]): Promise<boolean> {
    const updated = await this.prisma.$executeRaw`
      update mailjet_events set status = 'received', updated_at = now()
      where id = ${id} and status = any(${from as EventStatus[]}::event_status[])`;
    return updated === 1;
  }
}
