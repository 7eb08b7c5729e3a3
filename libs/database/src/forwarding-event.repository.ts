import { Injectable } from '@nestjs/common';
import { boundedText } from '@app/common';
import { PrismaService } from './prisma.service';
import { StatementBatcher } from './statement-batcher';
import { compareIds, FORWARDING_DONE, StoredMailjetEvent } from './stored-event';

/** A stored event as the worker takes it: with its dedupe key claimed and its recipient's stored userId. */
export interface EventForForwarding extends StoredMailjetEvent {
  /** The event that owns the dedupe key: this one, or a duplicate that came first; null if done or without a key. */
  dedupeOwner: bigint | null;
  /** The userId mapped to the recipient's email through the admin API, if any. */
  storedUserId: string | null;
}

// The worker's statements go to the pool directly and take many events at once: concurrent jobs
// share one round trip (StatementBatcher). Prisma would load its query engine into every worker
// (about 120 MB of resident memory) for statements it cannot express anyway (README, "Data access").

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

/** What the worker reads and writes: claims, outcomes and failed attempts. */
@Injectable()
export class ForwardingEventRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Loads an event for forwarding and, unless it is done, claims its dedupe key: `dedupeOwner`
   * is the event that owns the key, this one or the one that claimed it first (the primary key
   * of dedupe_keys decides between concurrent claims).
   */
  claim(id: bigint): Promise<EventForForwarding | null> {
    return this.claims.run(id);
  }

  async markForwarded(id: bigint, segmentMessageId: string): Promise<void> {
    await this.forwardedMarks.run({ id, value: segmentMessageId });
  }

  async markDuplicate(id: bigint, ownerId: bigint): Promise<void> {
    await this.duplicateMarks.run({ id, value: ownerId.toString() });
  }

  /** Counts a failed attempt with its reason (bounded); `final` when no attempt will follow. */
  async recordFailedAttempt(id: bigint, reason: string, final: boolean): Promise<void> {
    await this.prisma.pool.query(RECORD_FAILED_ATTEMPT, [id.toString(), boundedText(reason), final]);
  }

  private readonly claims = new StatementBatcher<bigint, EventForForwarding | null>(async (ids) => {
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
}
