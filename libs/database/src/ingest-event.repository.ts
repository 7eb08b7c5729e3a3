import { Injectable } from '@nestjs/common';
import { boundedText } from '@app/common';
import { MailjetEventRecord } from '@app/mailjet';
import { PrismaService } from './prisma.service';
import { compareIds } from './stored-event';
import type { Transaction } from './transaction-runner';

/** One stored event of a callback, in the order of the callback's body. */
export interface InsertedEvent {
  id: bigint;
  /** False for junk, stored as `invalid` with its reason. */
  usable: boolean;
}

// Every statement here runs on each callback, or in the api's background loops every few seconds,
// so they go to the pool directly: through `$queryRaw` the INSERT was 15-25% slower, and Prisma's
// query engine adds about 120 MB of resident memory to a process once loaded (README, "Data access").

// The payloads travel as one JSON array, split by PostgreSQL: serialising them as a text[] escaped
// every quote of every payload in JavaScript. A json value keeps each element's text exactly.
// Usable events are written `queued`: the service adds their jobs before it commits, and marks
// them `received` instead if that fails.
const INSERT_EVENTS = `
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

const MARK_RECEIVED = `update mailjet_events set status = 'received', queued_at = null where id = any($1::bigint[])`;

const MARK_QUEUED = `
  update mailjet_events set status = 'queued', queued_at = now(), updated_at = now()
  where id = any($1::bigint[]) and status = 'received'`;

const FIND_UNQUEUED = `
  select id::text from mailjet_events
  where status = 'received' and received_at < now() - make_interval(secs => $1::float8)
  order by id limit $2`;

const FIND_QUEUED_BEFORE = `
  select id::text from mailjet_events
  where status = 'queued' and id > $1::bigint and queued_at < now() - make_interval(secs => $2::float8)
  order by id limit $3`;

const idsOf = (rows: Array<{ id: string }>): bigint[] => rows.map((row) => BigInt(row.id));

/** The ingest path and the outbox: storing callbacks, and the states between stored and queued. */
@Injectable()
export class IngestEventRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Stores the events of several callbacks in one statement: usable ones as `queued`, junk as
   * `invalid` with its reason. Answers one row per record, in the records' order.
   */
  async insert(tx: Transaction, records: readonly MailjetEventRecord[]): Promise<InsertedEvent[]> {
    const { rows } = await tx.query<{ id: string; status: string }>(INSERT_EVENTS, [
      `[${records.map((r) => r.rawJson).join(',')}]`,
      records.map((r) => r.eventType),
      records.map((r) => r.time),
      records.map((r) => r.email),
      records.map((r) => r.messageId),
      records.map((r) => r.messageGuid),
      records.map((r) => r.dedupeKey),
      records.map((r) => (r.invalidReason === null ? null : boundedText(r.invalidReason))),
    ]);
    // Ids come from the sequence in insertion order, which follows the ordinality.
    return rows
      .map((row) => ({ id: BigInt(row.id), usable: row.status === 'queued' }))
      .sort((a, b) => compareIds(a.id, b.id));
  }

  /** Events whose jobs could not be added: the recovery loop queues them later. */
  async markReceived(tx: Transaction, ids: readonly bigint[]): Promise<void> {
    await tx.query(MARK_RECEIVED, [ids.map(String)]);
  }

  /** Marks `received` events queued; one that a worker already moved on is left as it is. */
  async markQueued(ids: readonly bigint[]): Promise<number> {
    if (ids.length === 0) return 0;
    const { rowCount } = await this.prisma.pool.query(MARK_QUEUED, [ids.map(String)]);
    return rowCount ?? 0;
  }

  /** Committed events that never reached the queue (Redis was down, or the process died in between). */
  async findUnqueued(olderThanMs: number, limit: number): Promise<bigint[]> {
    const { rows } = await this.prisma.pool.query<{ id: string }>(FIND_UNQUEUED, [olderThanMs / 1000, limit]);
    return idsOf(rows);
  }

  /** `queued` events queued longer ago than `olderThanMs`, in id order after `after`: candidates for lost jobs. */
  async findQueuedBefore(olderThanMs: number, after: bigint, limit: number): Promise<bigint[]> {
    const { rows } = await this.prisma.pool.query<{ id: string }>(FIND_QUEUED_BEFORE, [after.toString(), olderThanMs / 1000, limit]);
    return idsOf(rows);
  }
}
