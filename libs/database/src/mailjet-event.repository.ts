import { Injectable } from '@nestjs/common';
import { MailjetEventRecord } from '@app/mailjet';
import { Prisma } from './generated/prisma/client';
import { EventStatus } from './generated/prisma/enums';
import { PrismaService } from './prisma.service';
import { StatementBatcher } from './statement-batcher';

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

/** A stored event as the worker takes it: with its dedupe key claimed and its recipient's stored userId. */
export interface EventForForwarding extends StoredMailjetEvent {
  /** The event that owns the dedupe key: this one, or a duplicate that came first; null if done or without a key. */
  dedupeOwner: bigint | null;
  /** The userId mapped to the recipient's email through the admin API, if any. */
  storedUserId: string | null;
}

/** Statuses after which an event is never forwarded again (but by an explicit requeue). */
export const FORWARDING_DONE: ReadonlySet<string> = new Set(['forwarded', 'duplicate', 'invalid']);

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
// The payloads travel as one JSON array, split by PostgreSQL: serialising them as a text[] escaped
// every quote of every payload in JavaScript. A json value keeps each element's text exactly.
const INSERT_QUEUED = `
  insert into mailjet_events
    (payload, event_type, event_time, email, message_id, message_guid, dedupe_key, status, last_error, queued_at)
  select p.payload, e.event_type, to_timestamp(e.event_time), e.email, e.message_id, e.message_guid, e.dedupe_key,
         case when e.last_error is null then 'queued' else 'invalid' end::event_status, e.last_error,
         case when e.last_error is null then now() end
  from json_array_elements($1::json) with ordinality as p(payload, ord)
  join unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
    with ordinality as e(event_type, event_time, email, message_id, message_guid, dedupe_key, last_error, ord) using (ord)
  order by ord
  returning id, status::text`;

// The worker's statements take many events at once: concurrent jobs share one round trip (StatementBatcher).
// One statement loads the events, claims the dedupe keys of those still to forward (sorted, so that
// two workers claiming overlapping keys take them in the same order) and brings the recipients'
// stored userIds along.
const CLAIM_FOR_FORWARDING = `
  with e as (
    select id, payload::text as payload, event_type, status, email, message_id, event_time, dedupe_key, attempts
    from mailjet_events where id = any($1::bigint[])
  ), claimed as (
    insert into dedupe_keys (dedupe_key, event_id)
    select dedupe_key, id from e
    where status <> all($2::event_status[]) and dedupe_key is not null
    order by dedupe_key
    on conflict (dedupe_key) do nothing
    returning event_id
  )
  select e.id::text, e.payload, e.event_type as "eventType", e.status::text as status, e.email,
         e.message_id as "messageId", extract(epoch from e.event_time)::float8 as "eventTime",
         e.dedupe_key as "dedupeKey", e.attempts, c.event_id is not null as claimed, i.user_id as "storedUserId"
  from e
  left join claimed c on c.event_id = e.id
  left join identities i on i.email = lower(e.email)`;

const DEDUPE_KEY_OWNERS = `select dedupe_key, event_id::text from dedupe_keys where dedupe_key = any($1::text[])`;

const MARK_FORWARDED = `
  update mailjet_events e
  set status = 'forwarded', attempts = e.attempts + 1, forwarded_at = now(), last_error = null,
      segment_message_id = f.segment_message_id, updated_at = now()
  from unnest($1::bigint[], $2::text[]) as f(id, segment_message_id)
  where e.id = f.id`;

const MARK_DUPLICATE = `
  update mailjet_events e
  set status = 'duplicate', duplicate_of = d.owner_id, updated_at = now()
  from unnest($1::bigint[], $2::bigint[]) as d(id, owner_id)
  where e.id = d.id`;

const RECORD_FAILED_ATTEMPT = `
  update mailjet_events
  set attempts = attempts + 1, last_error = $2, updated_at = now(),
      status = (case when $3::boolean then 'failed' else 'queued' end)::event_status
  where id = $1`;

const MARK_RECEIVED = `
  update mailjet_events set status = 'received', queued_at = null where id = any($1::bigint[])`;

const MARK_QUEUED = `
  update mailjet_events set status = 'queued', queued_at = now(), updated_at = now()
  where id = any($1::bigint[]) and status = 'received'`;

const compareIds = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

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
        `[${records.map((r) => r.rawJson).join(',')}]`,
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
      inserted.sort((a, b) => compareIds(a.id, b.id));
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

  /**
   * Loads an event for forwarding and, unless it is done, claims its dedupe key: `dedupeOwner`
   * is the event that owns the key, this one or the one that claimed it first (the primary key
   * of dedupe_keys decides between concurrent claims). On the worker's hot path, like the writes
   * below: concurrent calls share one statement, straight through the pool.
   */
  claimForForwarding(id: bigint): Promise<EventForForwarding | null> {
    return this.forwardingClaims.run(id);
  }

  async markForwarded(id: bigint, segmentMessageId: string): Promise<void> {
    await this.forwardedMarks.run({ id, value: segmentMessageId });
  }

  async markDuplicate(id: bigint, ownerId: bigint): Promise<void> {
    await this.duplicateMarks.run({ id, value: ownerId.toString() });
  }

  private readonly forwardingClaims = new StatementBatcher<bigint, EventForForwarding | null>(async (ids) => {
    type Row = Omit<StoredMailjetEvent, 'id'> & { id: string; claimed: boolean; storedUserId: string | null };
    const { rows } = await this.prisma.pool.query<Row>(CLAIM_FOR_FORWARDING, [ids.map(String), [...FORWARDING_DONE]]);
    const contested = rows.filter((row) => !row.claimed && row.dedupeKey !== null && !FORWARDING_DONE.has(row.status));
    const owners = new Map<string, string>();
    if (contested.length > 0) {
      // A separate statement: its snapshot sees the claims that made ours conflict.
      const earlier = await this.prisma.pool.query<{ dedupe_key: string; event_id: string }>(DEDUPE_KEY_OWNERS, [
        contested.map((row) => row.dedupeKey),
      ]);
      for (const owner of earlier.rows) owners.set(owner.dedupe_key, owner.event_id);
    }
    const byId = new Map(
      rows.map(({ claimed, ...row }) => {
        const owner = claimed ? row.id : row.dedupeKey === null ? undefined : owners.get(row.dedupeKey);
        return [row.id, { ...row, id: BigInt(row.id), dedupeOwner: owner === undefined ? null : BigInt(owner) }];
      }),
    );
    return ids.map((id) => byId.get(id.toString()) ?? null);
  });

  private readonly forwardedMarks = this.batchedUpdate(MARK_FORWARDED);
  private readonly duplicateMarks = this.batchedUpdate(MARK_DUPLICATE);

  /** An UPDATE of many events by id, each with its own value, rows locked in id order. */
  private batchedUpdate(sql: string): StatementBatcher<{ id: bigint; value: string }, void> {
    return new StatementBatcher<{ id: bigint; value: string }, void>(async (updates) => {
      const sorted = [...updates].sort((a, b) => compareIds(a.id, b.id));
      await this.prisma.pool.query(sql, [sorted.map((update) => update.id.toString()), sorted.map((update) => update.value)]);
      return updates.map(() => undefined);
    });
  }

  /** Counts a failed attempt with its reason; `final` when no attempt will follow. */
  async recordFailedAttempt(id: bigint, reason: string, final: boolean): Promise<void> {
    await this.prisma.pool.query(RECORD_FAILED_ATTEMPT, [id.toString(), reason, final]);
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
    return rows.map((row) => row.id).sort(compareIds);
  }

  /** Moves one event back to `received` if its status is one of `from`; returns whether it did. */
  async takeOneForRequeue(id: bigint, from: readonly EventStatus[]): Promise<boolean> {
    const updated = await this.prisma.$executeRaw`
      update mailjet_events set status = 'received', updated_at = now()
      where id = ${id} and status = any(${from as EventStatus[]}::event_status[])`;
    return updated === 1;
  }
}
