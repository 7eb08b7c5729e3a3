import { Injectable } from '@nestjs/common';
import { boundedText } from '@app/common';
import { PrismaService } from './prisma.service';
import type { Transaction } from './transaction-runner';

export type BackfillState = 'running' | 'done' | 'failed' | 'cancelled';

export interface BackfillRow {
  id: string;
  sourceId: number;
  from: Date;
  to: Date;
  status: BackfillState;
  messagesScanned: number;
  eventsFound: number;
  eventsNew: number;
  eventsKnown: number;
  /** Messages Mailjet lists in the window (its first page's Total); null until read. */
  messagesTotal: number | null;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What one step of a backfill (a hundred messages) adds to its progress. */
export interface BackfillProgress {
  messagesScanned: number;
  eventsFound: number;
  eventsNew: number;
  eventsKnown: number;
}

/** A stored event as a backfill compares it with Mailjet's history. */
export interface StoredComparable {
  messageId: string;
  type: string;
  time: number;
  /** A click's link, the end of its dedupe key (the payload is not read: a stored `\u0000` would stop `->>`). */
  link: string | null;
}

const COLUMNS = `
  id::text, source_id as "sourceId", "from", "to", status::text as status, messages_scanned as "messagesScanned",
  events_found as "eventsFound", events_new as "eventsNew", events_known as "eventsKnown",
  messages_total as "messagesTotal", error,
  created_at as "createdAt", updated_at as "updatedAt"`;

/**
 * Backfills and their progress. A backfill is run by one api process at a time, the holder of its
 * lease; a lease that is not renewed (the process died) lets another process take it over, from
 * the last step it recorded. Raw SQL on the pool, like the ingest path: a step's progress is
 * written in the transaction that stores its events (TransactionRunner's client), which Prisma
 * cannot join.
 */
@Injectable()
export class BackfillRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** A new backfill; null when one of the same source that overlaps the window is running. */
  async create(sourceId: number, from: Date, to: Date): Promise<BackfillRow | null> {
    const { rows } = await this.prisma.pool.query<BackfillRow>(
      `insert into backfills (source_id, "from", "to")
       select $1, $2, $3
       where not exists (select 1 from backfills where source_id = $1 and status = 'running' and "from" < $3 and "to" > $2)
       returning ${COLUMNS}`,
      [sourceId, from, to],
    );
    return rows[0] ?? null;
  }

  async find(id: bigint): Promise<BackfillRow | null> {
    const { rows } = await this.prisma.pool.query<BackfillRow>(`select ${COLUMNS} from backfills where id = $1`, [id.toString()]);
    return rows[0] ?? null;
  }

  /** Cancels a running backfill; answers the backfill as it is after, or null if there is none. */
  async cancel(id: bigint): Promise<BackfillRow | null> {
    await this.prisma.pool.query(`update backfills set status = 'cancelled', updated_at = now() where id = $1 and status = 'running'`, [
      id.toString(),
    ]);
    return this.find(id);
  }

  /** Takes the lease of a running backfill that nobody holds (or whose holder went silent); null if none. */
  async takeLease(owner: string, leaseMs: number): Promise<BackfillRow | null> {
    const { rows } = await this.prisma.pool.query<BackfillRow>(
      `update backfills set lease_owner = $1, lease_until = now() + make_interval(secs => $2::float8 / 1000), updated_at = now()
       where id = (select id from backfills where status = 'running' and (lease_until is null or lease_until < now())
                   order by id limit 1 for update skip locked)
       returning ${COLUMNS}`,
      [owner, leaseMs],
    );
    return rows[0] ?? null;
  }

  /**
   * Adds a step's progress and renews the lease, in the transaction that stores the step's events:
   * a step is recorded whole or not at all. False if the backfill was cancelled or the lease lost.
   */
  async recordStep(tx: Transaction, id: string, owner: string, leaseMs: number, progress: BackfillProgress): Promise<boolean> {
    const { rowCount } = await tx.query(
      `update backfills set messages_scanned = messages_scanned + $3, events_found = events_found + $4,
              events_new = events_new + $5, events_known = events_known + $6,
              lease_until = now() + make_interval(secs => $7::float8 / 1000), updated_at = now()
       where id = $1 and lease_owner = $2 and status = 'running'`,
      [id, owner, progress.messagesScanned, progress.eventsFound, progress.eventsNew, progress.eventsKnown, leaseMs],
    );
    return rowCount === 1;
  }

  /** Renews the lease of a backfill this process runs; false if it was cancelled or taken over. */
  async renewLease(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const { rowCount } = await this.prisma.pool.query(
      `update backfills set lease_until = now() + make_interval(secs => $3::float8 / 1000)
       where id = $1 and lease_owner = $2 and status = 'running'`,
      [id, owner, leaseMs],
    );
    return rowCount === 1;
  }

  /** How many messages Mailjet lists in the window, as its first page said. */
  async recordTotal(id: string, owner: string, total: number): Promise<void> {
    await this.prisma.pool.query(`update backfills set messages_total = $3 where id = $1 and lease_owner = $2`, [id, owner, total]);
  }

  /** Ends a backfill this process holds: done, or failed with the reason. */
  async finish(id: string, owner: string, status: 'done' | 'failed', error?: string): Promise<void> {
    await this.prisma.pool.query(
      `update backfills set status = $3::backfill_status, error = $4, lease_owner = null, lease_until = null, updated_at = now()
       where id = $1 and lease_owner = $2 and status = 'running'`,
      [id, owner, status, error === undefined ? null : boundedText(error)],
    );
  }

  /** Lets go of a backfill (this process stops): another takes it over at once. */
  async release(id: string, owner: string): Promise<void> {
    await this.prisma.pool.query(`update backfills set lease_owner = null, lease_until = null where id = $1 and lease_owner = $2`, [id, owner]);
  }

  /** The stored events of these messages of a source (invalid ones aside), to tell known events from new ones. */
  async storedEventsOf(sourceId: number, messageIds: readonly string[]): Promise<StoredComparable[]> {
    if (messageIds.length === 0) return [];
    const { rows } = await this.prisma.pool.query<StoredComparable>(
      `select message_id as "messageId", event_type as type, extract(epoch from event_time)::float8 as time,
              case when event_type = 'click' then right(dedupe_key, 16) end as link
       from mailjet_events where message_id = any($2::text[]) and source_id = $1 and status <> 'invalid'`,
      [sourceId, messageIds],
    );
    return rows;
  }
}
