import { Injectable } from '@nestjs/common';
import type { QueryConfig } from 'pg';
import { PrismaService } from './prisma.service';
import type { Transaction } from './transaction-runner';

/** A partition dropped for retention, and how many events went with it. */
export interface DroppedPartition {
  partition: string;
  events: number;
}

// The drop waits for ACCESS EXCLUSIVE on mailjet_events, and every callback queues behind that
// wait: it gives up after this long, and the api tries again later.
const LOCK_TIMEOUT = '2s';
// Pruning a month's dedupe keys reads the whole partition: more than the pool's 10-second query
// timeout allows on months of millions of events.
const STATEMENT_TIMEOUT_MS = 10 * 60_000;

// node-postgres reads a query's own query_timeout, which its types leave out.
const statement = (text: string, values: unknown[] = []): QueryConfig =>
  ({ text, values, query_timeout: STATEMENT_TIMEOUT_MS + 5000 }) as QueryConfig & { query_timeout: number };

/**
 * The monthly partitions of mailjet_events, through the SQL functions of the partitioned_events
 * migration (which also explains them). Changes run in a transaction the caller opens and starts
 * with `lock`: one process at a time makes or drops partitions.
 */
@Injectable()
export class EventPartitionRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Sets the transaction's timeouts and takes the partitions' advisory lock; false when another process holds it. */
  async lock(tx: Transaction): Promise<boolean> {
    await tx.query(statement(`set local lock_timeout = '${LOCK_TIMEOUT}'`));
    await tx.query(statement(`set local statement_timeout = ${STATEMENT_TIMEOUT_MS}`));
    const { rows } = await tx.query<{ locked: boolean }>(statement('select pg_try_advisory_xact_lock(event_partitions_lock_key()) as locked'));
    return rows[0].locked;
  }

  /** Makes the partitions of this month and of the next `monthsAhead` that do not exist yet; answers their names. */
  async ensureAhead(tx: Transaction, monthsAhead: number): Promise<string[]> {
    const { rows } = await tx.query<{ name: string }>(statement('select ensure_event_partitions($1) as name', [monthsAhead]));
    return rows.map((row) => row.name);
  }

  /**
   * Drops the oldest partition whose events were all received more than `retentionDays` ago and
   * none of which is still `received` or `queued`, with its dedupe keys and counts; null when there is none.
   */
  async dropOneExpired(tx: Transaction, retentionDays: number): Promise<DroppedPartition | null> {
    const { rows } = await tx.query<{ dropped: string; events: string }>(
      statement('select dropped, events::text from drop_expired_event_partition(now() - make_interval(days => $1))', [retentionDays]),
    );
    return rows.length === 0 ? null : { partition: rows[0].dropped, events: Number(rows[0].events) };
  }

  /** Partitions past retention that are still there: those that hold `received` or `queued` events. */
  async expired(retentionDays: number): Promise<string[]> {
    const { rows } = await this.prisma.pool.query<{ name: string }>(
      `select name from event_partitions() where not is_default and to_time <= now() - make_interval(days => $1) order by to_time`,
      [retentionDays],
    );
    return rows.map((row) => row.name);
  }
}
