#!/usr/bin/env node
// npm run bench:e2e: 50,000 events posted to the api, then one worker process starts and forwards
// them to a local Segment-compatible sink; the time from its start until the sink has them all.
// The same backlog, posted to the bare reference and drained by the bare worker
// (../shared/bench/bare-worker.mjs), in the same run, gives the ratio.
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { Queue } from 'bullmq';
import pg from 'pg';
import {
  BASIC_AUTH, DATABASE_URL, REDIS_URL, ROOT, WEBHOOK_PASSWORD, WEBHOOK_USER,
  cpuMs, groupedBody, httpReady, machine, mb, migrate, sampleRss, startArgs, startProcess, startSink, updateBenchmarksDoc,
  queueKeyPrefix,
} from './support.mjs';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 50000);
const PER_REQUEST = 100;
const API_PORT = 3997;
const WORKER_PORT = 3996;
const BARE_PORT = 3995;
const WRITE_KEY = 'bench-write-key';
const BARE_DIR = path.resolve(ROOT, '../shared/bench');

// The worker's concurrency is the main lever: jobs move through the database, Segment and Redis
// in cohorts, so more jobs in flight overlap more of those waits. BENCH_CONCURRENCIES=50 for one.
const CONCURRENCIES = (process.env.BENCH_CONCURRENCIES ?? '50').split(',').map(Number);

/** Posts EVENTS events as grouped callbacks of PER_REQUEST, over 10 connections; answers the seconds it took. */
async function postBacklog(url, headers) {
  const started = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 10 }, async () => {
    while (next < EVENTS / PER_REQUEST) {
      next++;
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: groupedBody(PER_REQUEST) });
      if (response.status !== 200) throw new Error(`post answered ${response.status}`);
      await response.arrayBuffer();
    }
  }));
  return (Date.now() - started) / 1000;
}

/** The bare reference's worker on the same backlog: events/s from its first job to its last, as it prints them. */
async function runBare(sink) {
  const env = {
    DATABASE_URL, REDIS_URL, PORT: String(BARE_PORT), SEGMENT_HOST: `http://127.0.0.1:${sink.port}`, SEGMENT_WRITE_KEY: WRITE_KEY,
    WORKER_CONCURRENCY: '50',
  };
  execFileSync(process.execPath, [path.join(BARE_DIR, 'bare-reference.mjs'), '--drain'], { cwd: ROOT, env: { ...process.env, ...env } });
  const server = await startProcess('bare reference', [path.join(BARE_DIR, 'bare-reference.mjs')], env,
    httpReady(`http://127.0.0.1:${BARE_PORT}/events`));
  const postSeconds = await postBacklog(`http://127.0.0.1:${BARE_PORT}/events`, {});
  await server.stop();
  sink.reset();
  const worker = spawn(process.execPath, [path.join(BARE_DIR, 'bare-worker.mjs'), String(EVENTS)], { cwd: ROOT, env: { ...process.env, ...env } });
  let output = '';
  worker.stdout.on('data', (chunk) => (output += chunk));
  worker.stderr.on('data', (chunk) => (output += chunk));
  const stopSampling = sampleRss(worker.pid);
  // It prints its rate, then waits in worker.close() for the job it closes from: it is stopped here.
  const deadline = Date.now() + Number(process.env.BENCH_DEADLINE_MS ?? 600000);
  let rate;
  while (!(rate = /: (\d+) events\/s/.exec(output))) {
    if (worker.exitCode !== null || Date.now() > deadline) throw new Error(`the bare worker did not report: ${output.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const peakRss = stopSampling();
  worker.kill('SIGKILL');
  execFileSync(process.execPath, [path.join(BARE_DIR, 'bare-reference.mjs'), '--drain'], { cwd: ROOT, env: { ...process.env, ...env } });
  console.log(`bare worker: posted ${EVENTS} events in ${postSeconds.toFixed(1)} s; drained at ${rate[1]} events/s; peak RSS ${mb(peakRss)} MB`);
  return { eventsPerSecond: Number(rate[1]), peakRss };
}

/** Posts EVENTS events with the worker stopped, then starts one worker and times the drain. */
async function run(concurrency, db, sink) {
  await db.query('truncate mailjet_events, dedupe_keys');
  sink.reset();
  const env = {
    DATABASE_URL, REDIS_URL, HOST: '127.0.0.1', QUEUE_PREFIX: `bench-e2e-${Date.now()}`, LOG_LEVEL: 'warn',
    MAILJET_WEBHOOK_USER: WEBHOOK_USER, MAILJET_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD, ADMIN_TOKEN: 'bench-admin-token-16',
    SEGMENT_WRITE_KEY: WRITE_KEY, SEGMENT_HOST: `http://127.0.0.1:${sink.port}`, WORKER_CONCURRENCY: String(concurrency),
  };
  const api = await startProcess('api', startArgs('api'), { ...env, PORT: String(API_PORT) },
    httpReady(`http://127.0.0.1:${API_PORT}/health/live`));

  const postSeconds = await postBacklog(`http://127.0.0.1:${API_PORT}/webhooks/mailjet`, { authorization: BASIC_AUTH });
  const { rows: [{ queued }] } = await db.query("select count(*)::int as queued from mailjet_events where status = 'queued'");
  console.log(`posted ${EVENTS} events in ${postSeconds.toFixed(1)} s; ${queued} queued`);

  const workerStart = Date.now();
  const profiling = [
    ...(process.env.BENCH_V8_PROF ? ['--prof'] : []),
    ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
  ];
  const worker = await startProcess('worker', [...profiling, ...startArgs('worker')], { ...env, WORKER_HEALTH_PORT: String(WORKER_PORT) },
    httpReady(`http://127.0.0.1:${WORKER_PORT}/health/live`));
  const stopSampling = sampleRss(worker.child.pid);
  const deadline = Date.now() + Number(process.env.BENCH_DEADLINE_MS ?? 600000);
  while (sink.received.size < EVENTS) {
    if (Date.now() > deadline) {
      throw new Error(`only ${sink.received.size} of ${EVENTS} events forwarded in time; the worker said: ${worker.output.join('').slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const doneAt = Date.now();
  const workerCpuMs = cpuMs(worker.child.pid);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const peakRss = stopSampling();
  const { rows: [{ forwarded }] } = await db.query("select count(*)::int as forwarded from mailjet_events where status = 'forwarded'");
  if (process.env.BENCH_DEBUG) console.log(worker.output.join(''));
  await worker.stop();
  await api.stop();
  // The next run starts from an empty Redis: completed jobs kept for the dashboard would slow it down.
  const queue = new Queue('mailjet-events', { connection: { url: REDIS_URL }, prefix: queueKeyPrefix(env.QUEUE_PREFIX) });
  await queue.obliterate({ force: true });
  await queue.close();

  // Forwarding throughput: from the first delivery to the last; the start of the process is reported on its own.
  const result = {
    concurrency, postSeconds, forwarded, peakRss, workerCpuMs,
    startSeconds: (sink.firstAt - workerStart) / 1000,
    drainSeconds: (doneAt - sink.firstAt) / 1000,
    totalSeconds: (doneAt - workerStart) / 1000,
  };
  console.log(`WORKER_CONCURRENCY=${concurrency}: worker start to first delivery ${result.startSeconds.toFixed(1)} s; ` +
    `forwarded ${sink.received.size} events in ${result.drainSeconds.toFixed(1)} s from the first delivery: ` +
    `${Math.round(EVENTS / result.drainSeconds)} events/s (${Math.round(EVENTS / result.totalSeconds)} events/s counting the start); ` +
    `${forwarded} rows marked forwarded; worker peak RSS ${mb(peakRss)} MB; ` +
    `worker CPU ${Math.round((workerCpuMs / EVENTS) * 1000)} ms per 1,000 events (start included)`);
  return result;
}

async function main() {
  migrate();
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  const sink = await startSink();
  const results = [];
  let bare;
  try {
    bare = await runBare(sink);
    for (const concurrency of CONCURRENCIES) results.push(await run(concurrency, db, sink));
  } finally {
    await db.end();
    sink.server.close();
  }
  updateBenchmarksDoc('e2e', [
    '<!-- e2e:start -->',
    `Last \`npm run bench:e2e\`: ${new Date().toISOString()}, ${machine()}.`,
    '',
    `Bare worker (\`bare-worker.mjs\`, concurrency 50) on the same backlog of ${EVENTS} grouped events: **${bare.eventsPerSecond} events/s**, peak RSS ${mb(bare.peakRss)} MB.`,
    '',
    '| events | WORKER_CONCURRENCY | posted in | worker start to first delivery | first to last delivery | events/s forwarded | vs bare worker | counting the start | worker peak RSS | worker CPU per 1,000 events |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) =>
      `| ${EVENTS} | ${r.concurrency}${r.concurrency === 50 ? ' (default)' : ''} | ${r.postSeconds.toFixed(1)} s | ${r.startSeconds.toFixed(1)} s | ` +
      `${r.drainSeconds.toFixed(1)} s | **${Math.round(EVENTS / r.drainSeconds)}** | **${(EVENTS / r.drainSeconds / bare.eventsPerSecond).toFixed(2)}x** | ` +
      `${Math.round(EVENTS / r.totalSeconds)} | ${mb(r.peakRss)} MB | ${Math.round((r.workerCpuMs / EVENTS) * 1000)} ms |`),
    '<!-- e2e:end -->',
  ].join('\n'));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
