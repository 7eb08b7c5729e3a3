#!/usr/bin/env node
// npm run bench:redis: Redis memory held by a backlog. Posts BENCH_EVENTS (default 1,000,000)
// events as grouped callbacks of 100 to the api with no worker running (a Segment outage, as far
// as the queue can tell), and reads Redis's `INFO memory` before and after.
import IORedis from 'ioredis';
import { Queue } from 'bullmq';
import pg from 'pg';
import {
  BASIC_AUTH, DATABASE_URL, REDIS_URL, WEBHOOK_PASSWORD, WEBHOOK_USER,
  groupedBody, httpReady, machine, mb, migrate, startArgs, startProcess, updateBenchmarksDoc,
  queueKeyPrefix,
} from './support.mjs';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const PER_REQUEST = 100;
const API_PORT = 3994;

async function usedMemory(redis) {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

async function main() {
  migrate();
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  await db.query('truncate mailjet_events, dedupe_keys');
  const redis = new IORedis(REDIS_URL);
  const prefix = `bench-redis-${Date.now()}`;
  const api = await startProcess('api', startArgs('api'), {
    DATABASE_URL, REDIS_URL, HOST: '127.0.0.1', PORT: String(API_PORT), QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn',
    MAILJET_WEBHOOK_USER: WEBHOOK_USER, MAILJET_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD, ADMIN_TOKEN: 'bench-admin-token-16',
  }, httpReady(`http://127.0.0.1:${API_PORT}/health/live`));
  const queue = new Queue('mailjet-events', { connection: { url: REDIS_URL }, prefix: queueKeyPrefix(prefix) });
  try {
    await queue.waitUntilReady();
    const before = await usedMemory(redis);
    const started = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (next < EVENTS / PER_REQUEST) {
        next++;
        const response = await fetch(`http://127.0.0.1:${API_PORT}/webhooks/mailjet`, {
          method: 'POST', headers: { 'content-type': 'application/json', authorization: BASIC_AUTH }, body: groupedBody(PER_REQUEST),
        });
        if (response.status !== 200) throw new Error(`post answered ${response.status}`);
        await response.arrayBuffer();
      }
    }));
    const seconds = (Date.now() - started) / 1000;
    const after = await usedMemory(redis);
    const jobs = await queue.getJobCountByTypes('waiting', 'prioritized', 'delayed');
    const { rows: [{ queued }] } = await db.query("select count(*)::int as queued from mailjet_events where status = 'queued'");
    const perEvent = (after - before) / queued;
    console.log(
      `posted ${EVENTS} events in ${seconds.toFixed(0)} s; ${queued} queued in ${jobs} jobs; Redis used_memory ` +
        `${mb(before)} MB before, ${mb(after)} MB after: ${mb(after - before)} MB, ${perEvent.toFixed(1)} bytes per queued event ` +
        `(${mb(perEvent * 1_000_000)} MB per 1,000,000)`,
    );
    updateBenchmarksDoc('redis', [
      '<!-- redis:start -->',
      `Last \`npm run bench:redis\`: ${new Date().toISOString()}, ${machine()}.`,
      '',
      '| events posted (grouped, 100 per callback, no worker) | jobs | Redis used_memory before | after | per queued event | per 1,000,000 events |',
      '|---|---|---|---|---|---|',
      `| ${queued} | ${jobs} | ${mb(before)} MB | ${mb(after)} MB | **${perEvent.toFixed(1)} bytes** | **${mb(perEvent * 1_000_000)} MB** |`,
      '<!-- redis:end -->',
    ].join('\n'));
  } finally {
    await api.stop();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    redis.disconnect();
    await db.query('truncate mailjet_events, dedupe_keys');
    await db.end();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
