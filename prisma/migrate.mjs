#!/usr/bin/env node
// Applies prisma/migrations to DATABASE_URL with Prisma's schema engine compiled to WebAssembly,
// because the Prisma CLI cannot download its native engine on machines without internet access.
// The result is the same as `prisma migrate deploy`: the same folders, the same
// `_prisma_migrations` table. The database itself is created first when it does not exist.
//
//   node --experimental-wasm-modules prisma/migrate.mjs           apply pending migrations
//   node --experimental-wasm-modules prisma/migrate.mjs new NAME  write a migration for the schema change
//   node --experimental-wasm-modules prisma/migrate.mjs to NAME   apply pending migrations up to NAME, included
//                                                                 (tests of a migration start from the schema before it)
//   node --experimental-wasm-modules prisma/migrate.mjs wait [SECONDS]
//                                                                 apply nothing: wait (600 s by default) until every
//                                                                 migration of prisma/migrations is applied, then exit 0
//                                                                 (Kubernetes: the init container of api and worker pods,
//                                                                 so that none serves on the schema before the migrate Job)
import { readFile, readdir, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { SchemaEngine } from '@prisma/schema-engine-wasm';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';

const prismaDir = path.dirname(fileURLToPath(import.meta.url));
const migrationsDir = path.join(prismaDir, 'migrations');
const connectionString =
  process.env.DATABASE_URL ?? 'postgresql://postgres@localhost:5432/mailjet_segment';
const filters = { externalTables: [], externalEnums: [] };
const WAIT_DEFAULT_SECONDS = 600;
const WAIT_POLL_MS = 2000;

function redacted(url) {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

async function ensureDatabase() {
  const name = decodeURIComponent(new URL(connectionString).pathname.slice(1));
  const admin = new URL(connectionString);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (rowCount === 0) {
      await client.query(`create database "${name.replaceAll('"', '""')}"`);
      console.log(`migrate: created database ${name}`);
    }
  } finally {
    await client.end();
  }
}

async function migrationDirectories(upTo) {
  const entries = await readdir(migrationsDir, { withFileTypes: true }).catch(() => []);
  let dirs = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (upTo !== undefined) {
    if (!dirs.includes(upTo)) throw new Error(`no migration named ${upTo}`);
    dirs = dirs.filter((dir) => dir <= upTo);
  }
  return Promise.all(
    dirs.map(async (dir) => ({
      path: dir,
      migrationFile: {
        path: 'migration.sql',
        content: { tag: 'ok', value: await readFile(path.join(migrationsDir, dir, 'migration.sql'), 'utf8') },
      },
    })),
  );
}

/** The migrations of `expected` that the database has not applied, with why, or why it cannot be read. */
async function unappliedMigrations(expected) {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 3000, query_timeout: 5000 });
  try {
    await client.connect();
    const { rows } = await client.query('select migration_name, finished_at, rolled_back_at from _prisma_migrations');
    const applied = new Set(rows.filter((row) => row.finished_at && !row.rolled_back_at).map((row) => row.migration_name));
    const unfinished = new Set(rows.filter((row) => !row.finished_at && !row.rolled_back_at).map((row) => row.migration_name));
    return expected.filter((name) => !applied.has(name)).map((name) => (unfinished.has(name) ? `${name} (started, not finished: running, or failed)` : name));
  } catch (error) {
    // 42P01: the table does not exist yet, nothing was ever migrated; anything else (PostgreSQL away,
    // no such database, wrong password) is the reason we keep waiting.
    if (error?.code === '42P01') return expected;
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Waits until every folder of prisma/migrations is applied: a process of this image must not
 * start on the schema of an older one. Prints each new reason to wait once, and fails after
 * `seconds` with the last one.
 */
async function waitForMigrations(seconds) {
  const expected = (await migrationDirectories()).map((dir) => dir.path);
  const deadline = Date.now() + seconds * 1000;
  let reason;
  for (;;) {
    let current;
    try {
      const pending = await unappliedMigrations(expected);
      if (pending.length === 0) {
        console.log(`migrate: ${redacted(connectionString)} has the ${expected.length} migrations of this image; done waiting`);
        return;
      }
      current = `not applied yet: ${pending.join(', ')}`;
    } catch (error) {
      current = `cannot read _prisma_migrations: ${String(error?.message ?? error).split('\n')[0]}`;
    }
    if (current !== reason) console.log(`migrate: waiting for migrations; ${current}`);
    reason = current;
    if (Date.now() >= deadline) {
      throw new Error(`waited ${seconds} s for the migrations of this image (is the migrate Job running, or did it fail?); ${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(WAIT_POLL_MS, Math.max(0, deadline - Date.now()))));
  }
}

/**
 * The pg adapter splits a migration script on every ';', which breaks function bodies
 * ($$ ... $$). The whole script goes to PostgreSQL as one simple query instead, which also
 * makes each migration atomic.
 */
class WholeScriptPrismaPg extends PrismaPg {
  async connect() {
    const adapter = await super.connect();
    adapter.executeScript = async (script) => {
      try {
        await adapter.underlyingDriver().query(script);
      } catch (error) {
        adapter.onError(error);
      }
    };
    return adapter;
  }
}

async function withEngine(schemaText, run) {
  const engine = await SchemaEngine.new(
    { datamodels: [['schema.prisma', schemaText]] },
    () => {},
    bindMigrationAwareSqlAdapterFactory(new WholeScriptPrismaPg({ connectionString })),
  );
  try {
    return await run(engine);
  } finally {
    engine.free();
  }
}

async function main() {
  const [command, name] = process.argv.slice(2);
  if (command === 'to' && !name) throw new Error('usage: migrate.mjs to MIGRATION_FOLDER_NAME');
  if (command === 'wait') {
    const seconds = name === undefined ? WAIT_DEFAULT_SECONDS : Number(name);
    if (!(seconds > 0)) throw new Error('usage: migrate.mjs wait [SECONDS]');
    return waitForMigrations(seconds);
  }
  const schemaText = await readFile(path.join(prismaDir, 'schema.prisma'), 'utf8');
  await ensureDatabase();
  const migrationsList = {
    baseDir: migrationsDir,
    lockfile: {
      path: 'migration_lock.toml',
      content: await readFile(path.join(migrationsDir, 'migration_lock.toml'), 'utf8').catch(() => null),
    },
    shadowDbInitScript: '',
    migrationDirectories: await migrationDirectories(command === 'to' ? name : undefined),
  };

  const { appliedMigrationNames } = await withEngine(schemaText, (engine) =>
    engine.applyMigrations({ migrationsList, filters }),
  );
  console.log(
    `migrate: ${redacted(connectionString)} is ${command === 'to' ? `migrated up to ${name}` : 'up to date'}` +
      (appliedMigrationNames.length ? `; applied ${appliedMigrationNames.join(', ')}` : '; nothing to apply'),
  );
  if (command !== 'new') return;

  // The engine cannot introspect a database through the driver adapter, so a new migration is
  // the difference between the schema the last migration was written for (kept beside its SQL)
  // and the schema file now.
  if (!name || !/^[a-z0-9_]+$/.test(name)) throw new Error('usage: migrate.mjs new snake_case_name');
  const last = migrationsList.migrationDirectories.at(-1);
  const previous = last ? await readFile(path.join(migrationsDir, last.path, 'schema.prisma'), 'utf8') : null;
  const { stdout } = await withEngine(schemaText, (engine) =>
    engine.diff({
      from: previous ? { tag: 'schemaDatamodel', files: [{ path: 'schema.prisma', content: previous }] } : { tag: 'empty' },
      to: { tag: 'schemaDatamodel', files: [{ path: 'schema.prisma', content: schemaText }] },
      script: true,
      shadowDatabaseUrl: null,
      exitCode: null,
      filters,
    }),
  );
  if (!stdout.trim() || stdout.includes('This is an empty migration')) {
    console.log('migrate: the schema matches the migrations; nothing written');
    return;
  }
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const dir = path.join(migrationsDir, `${stamp}_${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'migration.sql'), stdout);
  await writeFile(path.join(dir, 'schema.prisma'), schemaText);
  await writeFile(
    path.join(migrationsDir, 'migration_lock.toml'),
    '# Please do not edit this file manually\nprovider = "postgresql"\n',
  );
  console.log(`migrate: wrote ${path.relative(process.cwd(), dir)}/migration.sql`);
}

// The engine keeps connections of its pool checked out after `free()`: without an explicit exit the
// process lingered 10 s (pg's idle timeout) after its work was done.
main().then(
  () => process.exit(0),
  (error) => {
    console.error(`migrate: failed: ${error?.message ?? error}`);
    process.exit(1);
  },
);
