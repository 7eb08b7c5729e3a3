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

// The ingest hot path goes to the pool directly: Prisma's raw query layer costs more than the query.
const INSERT_QUEUED = `
  insert into mailjet_events
    (payload, event_type, event_time, email, message_id, message_guid, dedupe_key, status, last_error, queued_at)
  select payload, event_type, to_timestamp(event_time), email, message_id, message_guid, dedupe_key,
         case when last_error is null then 'queued' else 'invalid' end::event_status, last_error,
         case when last_error is null then now() end
  from unnest($1::json[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
    with ordinality as e(payload, event_type, event_time, email, message_id, message_guid, dedupe_key, last_error, ord)
  order by ord
  returning id, status::text`;

const FIND_FOR_FORWARDING = `
  select id::text, payload::text as payload, event_type as "eventType", status::text as status, email,
         message_id as "messageId", extract(epoch from event_time)::float8 as "eventTime", dedupe_key as "dedupeKey", attempts
  from mailjet_events where id = $1`;

const CLAIM_DEDUPE_KEY = `
  insert into dedupe_keys (dedupe_key, event_id) values ($1, $2)
  on conflict (dedupe_key) do nothing returning event_id::text as "eventId"`;

const MARK_FORWARDED = `
  update mailjet_events
  set status = 'forwarded', attempts = attempts + 1, forwarded_at = now(), last_error = null,
      segment_message_id = $2, updated_at = now()
  where id = $1`;

const MARK_RECEIVED = `
  update mailjet_events set status = 'received', queued_at = null where id = any($1::bigint[])`;

const MARK_QUEUED = `
  update mailjet_events set status = 'queued', queued_at = now(), updated_at = now()
  where id = any($1::bigint[]) and status = 'received'`;

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
   * Stores the events of several callbacks in one statement and queues the usable ones, in one
   * transaction: usable events are committed as `queued` once `enqueue` has added their jobs, or
   * as `received` if it failed (Redis away; the recovery loop queues them later), junk as
   * `invalid` with its reason. Jobs are added before the commit, so a worker may look for an
   * event a moment before it is visible (it waits), and a rolled back event leaves a job that
   * finds nothing; never a committed event without a job or a `received` status. Returns, per
   * callback, the ids of its usable events in order.
   */
  async insertAndQueue(
    groups: ReadonlyArray<readonly MailjetEventRecord[]>,
    enqueue: (ids: bigint[]) => Promise<void>,
  ): Promise<{ queueable: bigint[][]; queueError?: Error }> {
    const records = groups.flat();
    const client = await this.prisma.pool.connect();
    // A checked-out client reports a lost connection as an 'error' event, which would crash the
    // process unheard; the failing query rejects anyway, and the broken client is discarded below.
    let connectionLost: Error | undefined;
    const onError = (error: Error) => (connectionLost = error);
    client.on('error', onError);
    try {
      await client.query('begin');
      const { rows } = await client.query<{ id: string; status: string }>(INSERT_QUEUED, [
        records.map((r) => r.rawJson),
        records.map((r) => r.eventType),
        records.map((r) => r.time),
        records.map((r) => r.email),
        records.map((r) => r.messageId),
        records.map((r) => r.messageGuid),
        records.map((r) => r.dedupeKey),
        records.map((r) => r.invalidReason),
      ]);
      // Ids come from the sequence in insertion order, which follows the ordinality.
      const inserted = rows.map((row) => ({ id: BigInt(row.id), usable: row.status === 'queued' }));
      inserted.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      let offset = 0;
      const queueable = groups.map((group) => {
        const own = inserted.slice(offset, offset + group.length);
        offset += group.length;
        return own.filter((row) => row.usable).map((row) => row.id);
      });
      let queueError: Error | undefined;
      const ids = queueable.flat();
      if (ids.length > 0) {
        try {
          await enqueue(ids);
        } catch (error) {
          queueError = error as Error;
          await client.query(MARK_RECEIVED, [ids.map(String)]);
        }
      }
      await client.query('commit');
      return { queueable, queueError };
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      connectionLost ??= error as Error;
      throw error;
    } finally {
      client.off('error', onError);
      client.release(connectionLost);
    }
  }

  /** Marks events queued; one that a worker already moved on is left as it is. On the hot path. */
  async markQueued(ids: readonly bigint[]): Promise<number> {
    if (ids.length === 0) return 0;
    const { rowCount } = await this.prisma.pool.query(MARK_QUEUED, [ids.map(String)]);
    return rowCount ?? 0;
  }

  /** Committed events that never reached the queue (Redis was down, or the process died in between). */
  async findUnqueued(olderThanMs: number, limit: number): Promise<bigint[]> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`
      select id from mailjet_events
      where status = 'received' and received_at < now() - make_interval(secs => ${olderThanMs / 1000}::float8)
      order by id limit ${limit}`;
    return rows.map((row) => row.id);
  }

  /** On the worker's hot path, like the writes below: straight through the pool. */
  async findForForwarding(id: bigint): Promise<StoredMailjetEvent | null> {
    const { rows } = await this.prisma.pool.query<Omit<StoredMailjetEvent, 'id'> & { id: string }>(FIND_FOR_FORWARDING, [
      id.toString(),
    ]);
    return rows[0] ? { ...rows[0], id: BigInt(rows[0].id) } : null;
  }

  /**
   * Claims a dedupe key for an event and returns the event that owns it: this one, or the one that
   * claimed it first. The primary key of dedupe_keys decides between concurrent claims.
   */
  async claimDedupeKey(dedupeKey: string, eventId: bigint): Promise<bigint> {
    const inserted = await this.prisma.pool.query<{ eventId: string }>(CLAIM_DEDUPE_KEY, [dedupeKey, eventId.toString()]);
    if (inserted.rows.length > 0) return BigInt(inserted.rows[0].eventId);
    // A separate statement: its snapshot sees the claim that made ours conflict.
    const owner = await this.prisma.pool.query<{ eventId: string }>(
      'select event_id as "eventId" from dedupe_keys where dedupe_key = $1',
      [dedupeKey],
    );
    return BigInt(owner.rows[0].eventId);
  }

  async markForwarded(id: bigint, segmentMessageId: string): Promise<void> {
    await this.prisma.pool.query(MARK_FORWARDED, [id.toString(), segmentMessageId]);
  }

  async markDuplicate(id: bigint, ownerId: bigint): Promise<void> {
    await this.prisma.pool.query(
      "update mailjet_events set status = 'duplicate', duplicate_of = $2, updated_at = now() where id = $1",
      [id.toString(), ownerId.toString()],
    );
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
