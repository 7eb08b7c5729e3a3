import { Pool } from 'pg';
import { TEST_DATABASE_URL } from './test-env';

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
  payload: string;
}

/** Direct access to the test database, to check what the product wrote. */
export class TestDatabase {
  readonly pool = new Pool({ connectionString: TEST_DATABASE_URL, max: 4 });

  /** Empties the tables; ids keep counting, as in production, so job ids never repeat. */
  async reset(): Promise<void> {
    await this.pool.query('truncate mailjet_events, dedupe_keys cascade');
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
              e.dedupe_key, e.segment_message_id, e.payload::text as payload
       from mailjet_events e order by e.id`,
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
