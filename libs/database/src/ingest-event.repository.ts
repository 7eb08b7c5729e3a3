import { Injectable } from '@nestjs/common';
import { boundedText } from '@app/common';
import { MailjetEventRecord } from '@app/mailjet';
import { PrismaService } from './prisma.service';
import { compareIds } from './stored-event';
import type { Transaction } from './transaction-runner';

/** An event of a callback to store: what the body said, and the source whose URL received it. */
export interface IngestRecord extends MailjetEventRecord {
  sourceId: number;
  /** How it reached us; a webhook's unless said. */
  origin?: 'webhook' | 'backfill';
}

/** One stored event of a callback, in the order of the callback's body. */
export interface InsertedEvent {
  id: bigint;
  sourceId: number;
  /** The job that is to carry it; null for junk, stored as `invalid` with its reason. */
  jobId: string | null;
}

/** A job to add: its id, written on its events' rows, and the events, all of one source. */
export interface EventJob {
  jobId: string;
  sourceId: number;
  eventIds: bigint[];
}

/** The jobs that inserted events name, each with its events in order; junk (no job) left out. */
export function jobsOf(inserted: readonly InsertedEvent[]): EventJob[] {
  const jobs = new Map<string, EventJob>();
  for (const { id, sourceId, jobId } of inserted) {
    if (jobId === null) continue;
    const job = jobs.get(jobId);
    if (job) job.eventIds.push(id);
    else jobs.set(jobId, { jobId, sourceId, eventIds: [id] });
  }
  return [...jobs.values()];
}

/** A queued event and the job its row names. */
export interface QueuedEvent {
  id: bigint;
  jobId: string;
}

// Every statement here runs on each callback, or in the api's background loops every few seconds,
// so they go to the pool directly: through Prisma the INSERT of one event was 73% slower, and
// Prisma's query engine adds 80-95 MB of resident memory to a process once loaded (docs/DESIGN.md, "Data access").

// The payloads travel as one JSON array, split by PostgreSQL: serialising them as a text[] escaped
// every quote of every payload in JavaScript. A json value keeps each element's text exactly.
// Usable events are written `queued`, with the id of the job that is to carry them: the
// statement takes one job number, and the caller numbers the parts ($9): one per source and per
// MAX_EVENTS_PER_JOB events, so that a job never carries two sources' events. The service adds the jobs before it commits, and marks the events `received` if that fails.
const INSERT_EVENTS = `
  with job as (select nextval('mailjet_job_seq') as number)
  insert into mailjet_events
    (payload, source_id, origin, event_type, event_time, email, message_id, message_guid, dedupe_key, status, last_error, queued_at, job_id)
  select p.payload, e.source_id, e.origin, e.event_type, to_timestamp(e.event_time), e.email, e.message_id, e.message_guid, e.dedupe_key,
         case when e.last_error is null then 'queued' else 'invalid' end::event_status, e.last_error,
         case when e.last_error is null then now() end,
         case when e.last_error is null then 'ingest-' || job.number || '-' || e.part end
  from job cross join json_array_elements($1::json) with ordinality as p(payload, ord)
  join unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::int[], $11::event_origin[])
    with ordinality as e(event_type, event_time, email, message_id, message_guid, dedupe_key, last_error, part, source_id, origin, ord) using (ord)
  order by ord
  returning id, source_id, job_id`;

const MARK_RECEIVED = `
  update mailjet_events set status = 'received', queued_at = null, job_id = null where id = any($1::bigint[])`;

// One job number per statement (an uncorrelated subquery runs once), and a job per source in it
// (`<origin>-<number>-s<source>`); only `received` rows move.
const ASSIGN_JOB = `
  update mailjet_events set status = 'queued', queued_at = now(), updated_at = now(),
         job_id = $2 || '-' || (select nextval('mailjet_job_seq')) || '-s' || source_id
  where id = any($1::bigint[]) and status = 'received'
  returning id::text, source_id, job_id`;

const RELEASE_JOB = `
  update mailjet_events set status = 'received', queued_at = null, job_id = null, updated_at = now()
  where id = any($1::bigint[]) and job_id = $2 and status = 'queued'`;

// Events of a paused source stay where they are (parked, or in their job, which parks them).
const MOVE_TO_JOB = `
  update mailjet_events e set job_id = $3 || '-' || (select nextval('mailjet_job_seq')) || '-s' || e.source_id,
         queued_at = now(), updated_at = now()
  from sources s
  where e.id = any($1::bigint[]) and coalesce(e.job_id, 'event-' || e.id) = any($2::text[]) and e.status = 'queued'
    and s.id = e.source_id and not s.paused
  returning e.id::text, e.source_id, e.job_id`;

// Parked events (job 'paused') of sources that are no longer paused: resumed, or deleted.
const FIND_PARKED = `
  select e.id::text, e.job_id from sources s
  cross join lateral (
    select id, job_id from mailjet_events
    where job_id = 'paused' and source_id = s.id and status = 'queued' and id > $1::bigint
    order by id limit $2) e
  where not s.paused and ($3::int is null or s.id = $3)
  order by e.id limit $2`;

const FIND_UNQUEUED = `
  select id::text from mailjet_events
  where status = 'received' and received_at < now() - make_interval(secs => $1::float8)
  order by id limit $2`;

// A row queued by a version before group jobs has no job_id: its job is `event-<id>`.
// Parked events are not in any job: FIND_PARKED takes those of resumed sources.
const FIND_QUEUED_BEFORE = `
  select id::text, coalesce(job_id, 'event-' || id) as job_id from mailjet_events
  where status = 'queued' and id > $1::bigint and queued_at < now() - make_interval(secs => $2::float8)
    and job_id is distinct from 'paused'
  order by id limit $3`;

const idsOf = (rows: Array<{ id: string }>): bigint[] => rows.map((row) => BigInt(row.id));

/** The jobs that rows name, each with its events in id order. */
function jobsOfRows(rows: ReadonlyArray<{ id: string; source_id: number; job_id: string }>): EventJob[] {
  const jobs = new Map<string, EventJob>();
  for (const row of rows) {
    const job = jobs.get(row.job_id) ?? { jobId: row.job_id, sourceId: row.source_id, eventIds: [] };
    job.eventIds.push(BigInt(row.id));
    jobs.set(row.job_id, job);
  }
  for (const job of jobs.values()) job.eventIds.sort(compareIds);
  return [...jobs.values()];
}

/**
 * The part of each record's job: usable events are numbered per source in chunks of
 * `maxJobEvents`, each (source, chunk) its own part; junk has none.
 */
function partsOf(records: readonly IngestRecord[], maxJobEvents: number): Array<number | null> {
  const usable = new Map<number, number>();
  const partNumbers = new Map<string, number>();
  return records.map((record) => {
    if (record.invalidReason !== null) return null;
    const index = usable.get(record.sourceId) ?? 0;
    usable.set(record.sourceId, index + 1);
    const chunk = `${record.sourceId}/${Math.floor(index / maxJobEvents)}`;
    if (!partNumbers.has(chunk)) partNumbers.set(chunk, partNumbers.size);
    return partNumbers.get(chunk)!;
  });
}

/** The ingest path and the outbox: storing callbacks, and the states between stored and queued. */
@Injectable()
export class IngestEventRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Stores the events of several callbacks in one statement: usable ones as `queued`, in jobs of
   * at most `maxJobEvents`, junk as `invalid` with its reason. Answers one row per record, in the
   * records' order.
   */
  async insert(tx: Transaction, records: readonly IngestRecord[], maxJobEvents: number): Promise<InsertedEvent[]> {
    const parts = partsOf(records, maxJobEvents);
    const { rows } = await tx.query<{ id: string; source_id: number; job_id: string | null }>(INSERT_EVENTS, [
      `[${records.map((r) => r.rawJson).join(',')}]`,
      records.map((r) => r.eventType),
      records.map((r) => r.time),
      records.map((r) => r.email),
      records.map((r) => r.messageId),
      records.map((r) => r.messageGuid),
      records.map((r) => r.dedupeKey),
      records.map((r) => (r.invalidReason === null ? null : boundedText(r.invalidReason))),
      parts,
      records.map((r) => r.sourceId),
      records.map((r) => r.origin ?? 'webhook'),
    ]);
    // Ids come from the sequence in insertion order, which follows the ordinality.
    return rows
      .map((row) => ({ id: BigInt(row.id), sourceId: row.source_id, jobId: row.job_id }))
      .sort((a, b) => compareIds(a.id, b.id));
  }

  /** Events whose jobs could not be added: the recovery loop queues them later. */
  async markReceived(tx: Transaction, ids: readonly bigint[]): Promise<void> {
    await tx.query(MARK_RECEIVED, [ids.map(String)]);
  }

  /**
   * Gives `received` events a new job, `<origin>-<number>`, and marks them `queued`: the caller
   * adds the job next (or releases it). Events that are no longer `received` are left out.
   */
  async assignJob(ids: readonly bigint[], origin: string): Promise<EventJob[]> {
    const { rows } = await this.prisma.pool.query<{ id: string; source_id: number; job_id: string }>(ASSIGN_JOB, [ids.map(String), origin]);
    return jobsOfRows(rows);
  }

  /** Back to `received` (the recovery loop's), for a job that could not be added. */
  async releaseJob(job: EventJob): Promise<void> {
    await this.prisma.pool.query(RELEASE_JOB, [job.eventIds.map(String), job.jobId]);
  }

  /**
   * Moves `queued` events whose job is one of `lostJobIds` to new jobs, one per source,
   * `<origin>-<number>-s<source>`; a paused source's events stay.
   */
  async moveToJob(ids: readonly bigint[], lostJobIds: readonly string[], origin: string): Promise<EventJob[]> {
    const { rows } = await this.prisma.pool.query<{ id: string; source_id: number; job_id: string }>(MOVE_TO_JOB, [
      ids.map(String),
      lostJobIds,
      origin,
    ]);
    return jobsOfRows(rows);
  }

  /** Parked events (job `paused`) of sources that are not paused any more, in id order after `after`; one source's only, given `sourceId`. */
  async findParked(after: bigint, limit: number, sourceId: number | null = null): Promise<QueuedEvent[]> {
    const { rows } = await this.prisma.pool.query<{ id: string; job_id: string }>(FIND_PARKED, [after.toString(), limit, sourceId]);
    return rows.map((row) => ({ id: BigInt(row.id), jobId: row.job_id }));
  }

  /** Committed events that never reached the queue (Redis was down, or the process died in between). */
  async findUnqueued(olderThanMs: number, limit: number): Promise<bigint[]> {
    const { rows } = await this.prisma.pool.query<{ id: string }>(FIND_UNQUEUED, [olderThanMs / 1000, limit]);
    return idsOf(rows);
  }

  /** `queued` events queued longer ago than `olderThanMs`, in id order after `after`: candidates for lost jobs. */
  async findQueuedBefore(olderThanMs: number, after: bigint, limit: number): Promise<QueuedEvent[]> {
    const { rows } = await this.prisma.pool.query<{ id: string; job_id: string }>(FIND_QUEUED_BEFORE, [
      after.toString(),
      olderThanMs / 1000,
      limit,
    ]);
    return rows.map((row) => ({ id: BigInt(row.id), jobId: row.job_id }));
  }
}
