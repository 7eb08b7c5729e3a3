import { ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { dropDatabase, migrateDatabase, ownDatabaseUrl } from './support/database';
import { waitFor } from './support/wait-for';

// `prisma/migrate.mjs wait`, the init container of the api and worker pods (deploy/kubernetes):
// a pod of a new image must not start on the schema of the old one while the migrate Job runs.

const MIGRATE = path.join(__dirname, '../prisma/migrate.mjs');
const MIGRATIONS = readdirSync(path.join(__dirname, '../prisma/migrations'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
const LAST = MIGRATIONS[MIGRATIONS.length - 1];
const BEFORE_LAST = MIGRATIONS[MIGRATIONS.length - 2];

interface Waiter {
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startWaiting(databaseUrl: string, seconds: number): Waiter {
  const child = spawn(process.execPath, ['--experimental-wasm-modules', '--disable-warning=ExperimentalWarning', MIGRATE, 'wait', String(seconds)], {
    env: { ...process.env, DATABASE_URL: databaseUrl },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { process: child, output: () => output, exited };
}

async function databaseExists(url: string): Promise<boolean> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    return (await client.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

describe('prisma/migrate.mjs wait (databases of its own)', () => {
  const urls: string[] = [];
  const waiters: Waiter[] = [];
  const ownDatabase = (label: string) => {
    const url = ownDatabaseUrl(label);
    urls.push(url);
    return url;
  };
  const waiting = (url: string, seconds: number) => {
    const waiter = startWaiting(url, seconds);
    waiters.push(waiter);
    return waiter;
  };

  afterAll(async () => {
    for (const waiter of waiters) waiter.process.kill('SIGKILL');
    for (const url of urls) await dropDatabase(url);
  });

  it('waits through a database not made yet and one partly migrated, and exits 0 once every migration is applied', async () => {
    const url = ownDatabase('mwait');
    const waiter = waiting(url, 60);
    await waitFor('the wait to report the missing database', () => /waiting for migrations; cannot read _prisma_migrations: database .* does not exist/.test(waiter.output()));

    await migrateDatabase(url, BEFORE_LAST);
    // A new reason, printed after the partial migration: it polled again and is still waiting.
    await waitFor('the wait to see only the last migration missing', () => waiter.output().includes(`waiting for migrations; not applied yet: ${LAST}\n`));
    expect(waiter.process.exitCode).toBeNull();

    await migrateDatabase(url);
    expect(await waiter.exited).toBe(0);
    expect(waiter.output()).toContain(`has the ${MIGRATIONS.length} migrations of this image; done waiting`);
  });

  it('exits 0 at once on a database that has every migration', async () => {
    const url = ownDatabase('mwdone');
    await migrateDatabase(url);
    const waiter = waiting(url, 60);
    expect(await waiter.exited).toBe(0);
    expect(waiter.output()).not.toContain('waiting for migrations');
  });

  it('gives up after its deadline with exit 1, naming what is missing, and creates nothing', async () => {
    const missing = ownDatabase('mwnone');
    const gone = waiting(missing, 1);
    expect(await gone.exited).toBe(1);
    expect(gone.output()).toMatch(/migrate: failed: waited 1 s for the migrations of this image \(is the migrate Job running, or did it fail\?\); cannot read _prisma_migrations: database .* does not exist/);
    // Only the migrate Job makes the database: waiting pods never do.
    expect(await databaseExists(missing)).toBe(false);

    const partial = ownDatabase('mwpart');
    await migrateDatabase(partial, BEFORE_LAST);
    const behind = waiting(partial, 1);
    expect(await behind.exited).toBe(1);
    expect(behind.output()).toContain(`waited 1 s for the migrations of this image (is the migrate Job running, or did it fail?); not applied yet: ${LAST}\n`);
  });

  it('says when a migration started and did not finish (a failed migrate Job), and does not take it for applied', async () => {
    const url = ownDatabase('mwfail');
    await migrateDatabase(url, BEFORE_LAST);
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(
        `insert into _prisma_migrations (id, checksum, migration_name, logs, started_at, applied_steps_count)
         values (gen_random_uuid()::text, '', $1, 'failed', now(), 0)`,
        [LAST],
      );
    } finally {
      await client.end();
    }
    const waiter = waiting(url, 1);
    expect(await waiter.exited).toBe(1);
    expect(waiter.output()).toContain(`not applied yet: ${LAST} (started, not finished: running, or failed)`);
  });

  it('refuses a deadline that is not a positive number of seconds', async () => {
    const waiter = startWaiting(TEST_URL_NEVER_USED, 0);
    waiters.push(waiter);
    expect(await waiter.exited).toBe(1);
    expect(waiter.output()).toContain('usage: migrate.mjs wait [SECONDS]');
  });
});

/** The usage check comes before any connection: this URL is never reached. */
const TEST_URL_NEVER_USED = 'postgresql://nobody@127.0.0.1:1/never';
