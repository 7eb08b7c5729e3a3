import { Injectable } from '@nestjs/common';
import { boundedText } from '@app/common';
import { AppConfig } from '@app/config';
import { EventStatus } from './generated/prisma/enums';
import { PrismaService } from './prisma.service';
import { compareIds, StoredMailjetEvent } from './stored-event';

/** A stored event as a job takes it: with its dedupe key claimed and its recipient's stored userId. */
export interface EventForForwarding extends StoredMailjetEvent {
  sourceId: number;
  /** Whether the row names the job that took it: an event moved to another job is that job's to forward. */
  inThisJob: boolean;
  /** Its source is paused: the claim parked it (job `paused`) until the source is resumed. */
  parked: boolean;
  /** Its source was deleted: it will never be forwarded. */
  sourceDeleted: boolean;
  /** When it was stored, in Unix seconds (with milliseconds). */
  receivedAt: number;
  /** The event that owns the dedupe key: this one, or a duplicate that came first; null if not to forward or without a key. */
  dedupeOwner: bigint | null;
  /** The userId mapped to the recipient's email through the admin API, if any. */
  storedUserId: string | null;
}

/** What became of one event of a job; written for all of them in one statement. */
export type EventOutcome =
  | { id: bigint; status: typeof EventStatus.forwarded; segmentMessageId: string }
  | { id: bigint; status: typeof EventStatus.duplicate; duplicateOf: bigint }
  /** A failed attempt: `queued` when another will follow, `failed` when none will. */
  | { id: bigint; status: typeof EventStatus.queued | typeof EventStatus.failed; reason: string };

// The worker's statements go to the pool directly, one or two per job whatever its size. Prisma
// would load its query engine into every worker (80-95 MB of resident memory) for statements
// it cannot express anyway (docs/DESIGN.md, "Data access").

// One statement loads the job's events, claims the dedupe keys of those still to forward (sorted,
// so that two workers claiming overlapping keys take them in the same order) and brings the
// recipients' stored userIds along. A row that an api of the version before group jobs queued names no
// job: its job is `event-<id>`. Events of a paused source are parked instead (job 'paused', still
// `queued`), unless Segment already has them ($3); those of a deleted source claim nothing.
// `near`: where a source was ever backfilled, the same event may have come twice by different ways
// (webhook and backfill) with times a second apart, hence different dedupe keys. A backfill stores
// only what it found no stored event for (one to one, nearest in time), so only a webhook event is
// checked here: one whose backfilled twin (same message, type, link, within $4 seconds, not yet the
// owner of another duplicate) is stored, whichever came first, is that twin's duplicate. A backfilled
// event is never marked here: a second open a second after a delivered one is a real event.
const CLAIM_FOR_FORWARDING = `
  with e as (
    select m.id, m.payload::text as payload, m.event_type, m.status, m.email, m.message_id, m.event_time, m.dedupe_key,
           m.attempts, m.source_id, s.paused, s.deleted_at is not null as source_deleted, m.received_at, m.origin,
           coalesce(m.job_id, 'event-' || m.id) = $2 as in_this_job
    from mailjet_events m join sources s on s.id = m.source_id
    where m.id = any($1::bigint[])
  ), parked as (
    update mailjet_events m set job_id = 'paused', updated_at = now()
    from e
    where m.id = e.id and e.in_this_job and e.paused and e.status = 'queued' and not (e.id = any($3::bigint[]))
      and m.status = 'queued' and coalesce(m.job_id, 'event-' || m.id) = $2
    returning m.id
  ), backfilled as materialized (
    -- Only the events of sources ever backfilled are compared at all: none, for most deployments.
    select * from e
    where in_this_job and status = 'queued' and message_id is not null
      and exists (select 1 from backfills b where b.source_id = e.source_id)
  ), near as (
    -- By message id (its index); the time window is checked on the few rows of that message.
    select distinct on (c.id) c.id, o.id as owner
    from backfilled c join mailjet_events o
      on o.message_id = c.message_id and o.source_id = c.source_id and o.event_type = c.event_type
     and c.origin = 'webhook' and o.origin = 'backfill' and o.status not in ('invalid', 'duplicate')
     and abs(extract(epoch from o.event_time - c.event_time)) <= $4
     and (c.event_type <> 'click' or right(o.dedupe_key, 16) = right(c.dedupe_key, 16))
     and not exists (
       select 1 from mailjet_events w
       where w.message_id = o.message_id and w.source_id = o.source_id and w.duplicate_of = o.id and w.id <> c.id
     )
    order by c.id, abs(extract(epoch from o.event_time - c.event_time)), o.id
  ), claimed as (
    insert into dedupe_keys (dedupe_key, event_id)
    select dedupe_key, id from e
    where in_this_job and status = 'queued' and dedupe_key is not null and not paused and not source_deleted
      and id not in (select id from near)
    order by dedupe_key
    on conflict (dedupe_key) do nothing
    returning event_id
  )
  select e.id::text, e.payload, e.event_type as "eventType", e.status::text as status, e.email,
         e.message_id as "messageId", extract(epoch from e.event_time)::float8 as "eventTime",
         e.dedupe_key as "dedupeKey", e.attempts, e.source_id as "sourceId", e.in_this_job as "inThisJob",
         p.id is not null as parked, e.source_deleted as "sourceDeleted", extract(epoch from e.received_at)::float8 as "receivedAt",
         c.event_id is not null as claimed, n.owner::text as "nearOwner", i.user_id as "storedUserId"
  from e
  left join parked p on p.id = e.id
  left join near n on n.id = e.id
  left join claimed c on c.event_id = e.id
  left join identities i on i.email = lower(e.email)
  order by e.id`;

// Why a job's events still wait, on those still queued in it; once a change, not at every retry.
const NOTE_WAITING = `
  update mailjet_events set last_error = $3, updated_at = now()
  where id = any($1::bigint[]) and status = 'queued' and coalesce(job_id, 'event-' || id) = $2 and last_error is distinct from $3`;

const DEDUPE_KEY_OWNERS = `select dedupe_key, event_id::text from dedupe_keys where dedupe_key = any($1::text[])`;

// A failed attempt or a duplicate is written only while the row is still queued in this job (a
// requeue may have taken it meanwhile); a delivery is written whatever happened meanwhile.
// `e.id = any($1)` repeats the join for the planner: joined to unnest() alone, a partition without
// statistics yet (a new month's, or one refilled faster than autovacuum analyses it) was read
// whole by a hash join for every job (measured: 37 ms a job at 50,000 rows, against 0.4 ms).
const RECORD_OUTCOMES = `
  update mailjet_events e
  set status = o.status::event_status,
      attempts = e.attempts + (o.status <> 'duplicate')::int,
      forwarded_at = case when o.status = 'forwarded' then now() else e.forwarded_at end,
      segment_message_id = coalesce(o.segment_message_id, e.segment_message_id),
      duplicate_of = coalesce(o.duplicate_of, e.duplicate_of),
      last_error = case when o.status = 'forwarded' then null else coalesce(o.reason, e.last_error) end,
      updated_at = now()
  from unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[])
    as o(id, status, segment_message_id, duplicate_of, reason)
  where e.id = o.id and e.id = any($1::bigint[])
    and (o.status = 'forwarded' or (coalesce(e.job_id, 'event-' || e.id) = $6 and e.status = 'queued'))`;

/** What the worker reads and writes: a job's events, their claims and their outcomes. */
@Injectable()
export class ForwardingEventRepository {
  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Loads a job's events and, for those the job is to forward, claims their dedupe keys:
   * `dedupeOwner` is the event that owns the key, this one or the one that claimed it first (the
   * primary key of dedupe_keys decides between concurrent claims). Events not found are not
   * committed yet, or never will be (their callback was rolled back).
   */
  async claim(jobId: string, ids: readonly bigint[], delivered: readonly bigint[] = []): Promise<EventForForwarding[]> {
    type Row = Omit<EventForForwarding, 'id' | 'dedupeOwner'> & { id: string; claimed: boolean; nearOwner: string | null };
    const { rows } = await this.prisma.pool.query<Row>(CLAIM_FOR_FORWARDING, [
      ids.map(String),
      jobId,
      delivered.map(String),
      this.config.mailjetApi.backfillToleranceSeconds,
    ]);
    // Only a `queued` row is still to forward: its job may be on a retry after the others ended.
    const toForward = (row: Omit<Row, 'claimed' | 'nearOwner'>) =>
      row.inThisJob && row.dedupeKey !== null && row.status === EventStatus.queued && !row.parked && !row.sourceDeleted;
    const contested = rows.filter((row) => toForward(row) && !row.claimed && row.nearOwner === null);
    const owners = new Map<string, string>();
    if (contested.length > 0) {
      // A separate statement: its snapshot sees the claims that made ours conflict.
      const earlier = await this.prisma.pool.query<{ dedupe_key: string; event_id: string }>(DEDUPE_KEY_OWNERS, [
        contested.map((row) => row.dedupeKey),
      ]);
      for (const owner of earlier.rows) owners.set(owner.dedupe_key, owner.event_id);
    }
    return rows.map(({ claimed, nearOwner, ...row }) => {
      const owner = !toForward(row) ? undefined : claimed ? row.id : (nearOwner ?? owners.get(row.dedupeKey!));
      return { ...row, id: BigInt(row.id), dedupeOwner: owner === undefined ? null : BigInt(owner) };
    });
  }

  /** Says on a job's queued events why they wait, without an attempt (forwarding them clears it). */
  async noteWaiting(jobId: string, ids: readonly bigint[], reason: string): Promise<void> {
    await this.prisma.pool.query(NOTE_WAITING, [ids.map(String), jobId, boundedText(reason)]);
  }

  /** Writes what became of a job's events in one statement; reasons are bounded. */
  async recordOutcomes(jobId: string, outcomes: readonly EventOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    const sorted = [...outcomes].sort((a, b) => compareIds(a.id, b.id));
    await this.prisma.pool.query(RECORD_OUTCOMES, [
      sorted.map((o) => o.id.toString()),
      sorted.map((o) => o.status),
      sorted.map((o) => ('segmentMessageId' in o ? o.segmentMessageId : null)),
      sorted.map((o) => ('duplicateOf' in o ? o.duplicateOf.toString() : null)),
      sorted.map((o) => ('reason' in o ? boundedText(o.reason) : null)),
      jobId,
    ]);
  }
}
