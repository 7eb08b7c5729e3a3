#!/usr/bin/env node
// What the README's "Data access" section says, measured: the ingest INSERT through the pg pool
// against the same statement through Prisma's `$queryRawUnsafe` (same repository code, two
// transports), and the resident memory a process gains when Prisma's query engine loads.
//   npm run bench:data-access          (after `nest build api`; uses the bench database)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DATABASE_URL, ROOT, groupedBody, machine, mb, median, migrate, openEvent } from './support.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));
const DIST = path.join(ROOT, 'dist/apps/api/libs');
const ROUNDS = 5;
const INSERTS_PER_ROUND = 400;

if (process.argv[2] === 'memory') {
  // Child process: resident memory before and after each kind of query.
  const { PrismaClient } = require(path.join(DIST, 'database/src/generated/prisma/client.js'));
  const { PrismaPg } = require('@prisma/adapter-pg');
  const { Pool } = require('pg');
  const rss = () => process.memoryUsage().rss;
  const pool = new Pool({ connectionString: DATABASE_URL, max: 2 });
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const figures = { start: rss() };
  for (let i = 0; i < 200; i++) await pool.query('select id, payload::text from mailjet_events order by id desc limit 10');
  figures.afterPool = rss();
  for (let i = 0; i < 200; i++) await prisma.$queryRaw`select id, payload::text from mailjet_events order by id desc limit 10`;
  figures.afterQueryRaw = rss();
  for (let i = 0; i < 200; i++) await prisma.mailjetEvent.findMany({ take: 10, orderBy: { id: 'desc' } });
  figures.afterFindMany = rss();
  console.log(JSON.stringify(figures));
  await prisma.$disconnect();
  await pool.end();
  process.exit(0);
}

migrate();
const { PrismaClient } = require(path.join(DIST, 'database/src/generated/prisma/client.js'));
const { IngestEventRepository } = require(path.join(DIST, 'database/src/ingest-event.repository.js'));
const { parseMailjetBody, toEventRecord } = require(path.join(DIST, 'mailjet/src/index.js'));
const { PrismaPg } = require('@prisma/adapter-pg');
const { Pool } = require('pg');

const pool = new Pool({ connectionString: DATABASE_URL, max: 4 });
const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
const repository = new IngestEventRepository({ pool });
const transports = {
  'pool.query': pool,
  '$queryRawUnsafe': { query: async (sql, params) => ({ rows: await prisma.$queryRawUnsafe(sql, ...params) }) },
};
const recordsOf = (body) => parseMailjetBody(body).map(toEventRecord);

async function round(tx, bodies) {
  const started = process.hrtime.bigint();
  for (const body of bodies) await repository.insert(tx, recordsOf(body));
  return Number(process.hrtime.bigint() - started) / 1e3 / bodies.length;
}

console.log(`data access on ${machine()}`);
for (const [label, makeBody] of [['one event per insert', openEvent], ['100 events per insert', () => groupedBody(100)]]) {
  const perInsert = { 'pool.query': [], '$queryRawUnsafe': [] };
  const count = label.startsWith('one') ? INSERTS_PER_ROUND : INSERTS_PER_ROUND / 10;
  await round(transports['$queryRawUnsafe'], Array.from({ length: 20 }, makeBody)); // engine loaded, JIT warm
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, tx] of Object.entries(transports)) perInsert[name].push(await round(tx, Array.from({ length: count }, makeBody)));
  }
  const direct = median(perInsert['pool.query']);
  const raw = median(perInsert['$queryRawUnsafe']);
  console.log(
    `${label}: pool.query ${direct.toFixed(0)} µs, $queryRawUnsafe ${raw.toFixed(0)} µs per insert (median of ${ROUNDS} alternating rounds): ` +
      `Prisma ${(((raw - direct) / direct) * 100).toFixed(0)}% slower`,
  );
}
await pool.query('truncate mailjet_events, dedupe_keys cascade');
await prisma.$disconnect();
await pool.end();

const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, 'memory'], { cwd: ROOT, encoding: 'utf8' });
if (child.status !== 0) throw new Error(child.stderr);
const memory = JSON.parse(child.stdout.trim().split('\n').at(-1));
console.log(
  `resident memory of a process: ${mb(memory.start)} MB at start, ${mb(memory.afterPool)} MB after 200 pool queries, ` +
    `${mb(memory.afterQueryRaw)} MB after 200 $queryRaw (+${mb(memory.afterQueryRaw - memory.afterPool)} MB), ` +
    `${mb(memory.afterFindMany)} MB after 200 findMany (+${mb(memory.afterFindMany - memory.afterPool)} MB over the pool alone)`,
);
