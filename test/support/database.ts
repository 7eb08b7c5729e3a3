import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Pool } from 'pg';
import { TEST_DATABASE_URL } from './test-env';
import { waitFor } from './wait-for';

/** A stored event as tests read it: the id as exact digits, the payload as the text received. */
export interface StoredEvent {
  id: string;
  event_type: string;
  status: string;
  attempts: number;
  last_error: string | null;
  message_id: string | null;
  dedupe_key: string | null;
  segment_message_id: string | null;
  /** The BullMQ job that carries the event. */
  job_id: string | null;
  payload: string;
}

/**
 * The id of the first event stored by each test: the next one has one more digit, so a test
 * that stores two events or more sees ids on both sides of a digit boundary, and any query that
 * sorts ids as text (`select id::text ... order by id` sorts by the text column) fails at once.
 */
export const FIRST_EVENT_ID = 9_999_999_999n;

/** Direct access to the test database (or another, given its URL), to check what the product wrote. */
export class TestDatabase {
  readonly pool: Pool;

  constructor(readonly url: string = TEST_DATABASE_URL) {
    this.pool = new Pool({ connectionString: url, max: 4 });
  }

  /**
   * Empties the tables (identity mappings too) and starts the ids again at FIRST_EVENT_ID.
   * Restarting in every test, not once per run, keeps every test on the digit boundary and the
   * sequence far from the end of bigint however many runs reuse the database. Event ids repeat,
   * then: a job left by an earlier test would carry ids that now name other events. So call this
   * only with a queue prefix that holds no job: a fresh one, or through `ApiHarness.reset`, which
   * empties the queue first.
   */
  async reset(): Promise<void> {
    await this.pool.query('truncate mailjet_events, dedupe_keys, identities cascade');
    // Sources made by a test go; the default one (from the migration) stays, as it was.
    await this.pool.query(`delete from sources where id <> 1`);
    await this.pool.query(`update sources set paused = false, name = 'default' where id = 1 and (paused or name <> 'default')`);
    await this.pool.query(`select setval(pg_get_serial_sequence('mailjet_events', 'id'), $1, false)`, [FIRST_EVENT_ID.toString()]);
  }

  async query<T extends object>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(sql, params)).rows as T[];
  }

  /**
   * Every stored event, oldest first. `select id::text ... order by id` would sort by the text
   * output column (ids 96..102 as 100, 101, 102, 96, ...): the order names the table's column.
   */
  events(): Promise<StoredEvent[]> {
    return this.query<StoredEvent>(
      `select e.id::text as id, e.event_type, e.status::text as status, e.attempts, e.last_error, e.message_id,
              e.dedupe_key, e.segment_message_id, e.job_id, e.payload::text as payload
       from mailjet_events e order by e.id`,
    );
  }

  /**
   * Waits until no stored event is still `received` or `queued` (and, given `count`, exactly
   * that many are stored); returns them oldest first.
   */
  settled(count?: number, timeoutMs?: number): Promise<StoredEvent[]> {
    return waitFor(
      `${count ?? 'every'} stored event(s) to settle`,
      async () => {
        const events = await this.events();
        const pending = events.some((event) => event.status === 'received' || event.status === 'queued');
        return !pending && (count === undefined || events.length === count) ? events : undefined;
      },
      { timeoutMs },
    );
  }

  async count(where = 'true', params: unknown[] = []): Promise<number> {
    const [row] = await this.query<{ n: string }>(`select count(*)::text as n from mailjet_events where ${where}`, params);
    return Number(row.n);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * The URL of a new database of the test server's, named after the test database and `label`, for a
 * test that migrates a database from an older schema or drops partitions: nothing else uses it.
 */
export function ownDatabaseUrl(label: string): string {
  const url = new URL(TEST_DATABASE_URL);
  const base = decodeURIComponent(url.pathname.slice(1)).slice(0, 40);
  url.pathname = `/${base}_${label}_${randomBytes(3).toString('hex')}`;
  return url.toString();
}

/**
 * Creates the database if needed and applies prisma/migrations to it with the runner of `npm run
 * migrate`: all of them, or up to the folder `upTo`, included.
 */
export async function migrateDatabase(url: string, upTo?: string): Promise<void> {
  await promisify(execFile)(
    process.execPath,
    ['--experimental-wasm-modules', '--disable-warning=ExperimentalWarning', path.join(__dirname, '../../prisma/migrate.mjs'), ...(upTo ? ['to', upTo] : [])],
    { env: { ...process.env, DATABASE_URL: url } },
  );
}

export async function dropDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name.replaceAll('"', '""')}" with (force)`);
  } finally {
    await client.end();
  }
}
