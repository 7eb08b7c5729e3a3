import { Pool } from 'pg';
import { TEST_DATABASE_URL } from './test-env';

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

  async count(where = 'true', params: unknown[] = []): Promise<number> {
    const [row] = await this.query<{ n: string }>(`select count(*)::text as n from mailjet_events where ${where}`, params);
    return Number(row.n);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
