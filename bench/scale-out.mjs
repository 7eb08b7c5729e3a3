#!/usr/bin/env node
// npm run bench:scale-out: the worked simulation of docs/SCALING.md. A 3-master Redis Cluster
// (3 replicas) started here from Debian's redis-server, 3 built api processes and 1 to 4 built
// worker processes on it, one PostgreSQL, a local Segment-compatible sink. For each worker count:
// BENCH_EVENTS grouped events (100 a callback) posted across the 3 apis with the workers stopped,
// then all workers let loose at once (the queue was paused) and timed until every row is
// `forwarded`, as `npm run bench:e2e` does for one. CPU time of every part (workers, apis, PostgreSQL, the Redis
// nodes) and of the whole machine is read from /proc over the drain, to say which one saturates.
// BENCH_REDIS=single runs the same on the local Redis instead of the cluster.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import IORedis, { Cluster } from 'ioredis';
import pg from 'pg';
import {
  BASIC_AUTH, REDIS_URL, ROOT, WEBHOOK_PASSWORD, WEBHOOK_USER,
  cpuMs, groupedBody, httpReady, machine, mb, migrate, queueKeyPrefix, sampleRss, startArgs, startProcess, startSink,
} from './support.mjs';

const require = createRequire(import.meta.url);
const { startRedisCluster } = require('../test/support/redis-cluster.js');

const DATABASE_URL = process.env.BENCH_SCALE_OUT_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/mailjet_segment_scale_out_bench';
const EVENTS = Number(process.env.BENCH_EVENTS ?? 50000);
const WORKERS = (process.env.BENCH_WORKERS ?? '1,2,3,4').split(',').map(Number);
const APIS = Number(process.env.BENCH_APIS ?? 3);
const CLUSTER = (process.env.BENCH_REDIS ?? 'cluster') === 'cluster';
// 3 apis + 4 workers, each with a pool of this many and a listener, plus this script: under the
// server's max_connections of 100 (the default pool of 20 would need 147).
const POOL_SIZE = Number(process.env.BENCH_POOL_SIZE ?? 10);
const PER_REQUEST = 100;
const API_PORT = 3980;
const WORKER_PORT = 3970;
const WRITE_KEY = 'bench-write-key';

/** CPU time of the machine, busy and all, in clock ticks (the first line of /proc/stat). */
function machineTicks() {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const values = fields.map(Number);
  const idle = values[3] + (values[4] ?? 0);
  const total = values.reduce((sum, value) => sum + value, 0);
  return { busy: total - idle, total };
}

/** Pids of the processes whose command line matches. */
function pidsOf(pattern) {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((match) => match && pattern.test(match[2]))
    .map((match) => Number(match[1]));
}

const cpuOf = (pids) => pids.reduce((sum, pid) => {
  try {
    return sum + cpuMs(pid);
  } catch {
    return sum; // a PostgreSQL backend that ended
  }
}, 0);

/** Posts EVENTS events across the apis, 10 connections in all; answers the seconds it took. */
async function postBacklog(ports) {
  const started = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 10 }, async (_, connection) => {
    const url = `http://127.0.0.1:${ports[connection % ports.length]}/webhooks/mailjet`;
    while (next < EVENTS / PER_REQUEST) {
      next++;
      const response = await fetch(url, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: BASIC_AUTH }, body: groupedBody(PER_REQUEST),
      });
      if (response.status !== 200) throw new Error(`post answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
    }
  }));
  return (Date.now() - started) / 1000;
}

/** The product's queue, seen from here: paused while the backlog is posted, resumed to start every worker at once. */
function queueOf(prefix, cluster) {
  const connection = cluster
    ? new Cluster(cluster.nodes.split(',').map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) })), {
        enableReadyCheck: false, redisOptions: { maxRetriesPerRequest: null },
      })
    : new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('mailjet-events', { connection, prefix: queueKeyPrefix(prefix, Boolean(cluster)) });
  // BullMQ leaves a connection it was given open: closed here, or this process never ends.
  return Object.assign(queue, { closeAll: async () => { await queue.close(); connection.disconnect(); } });
}

async function waitUntil(what, condition) {
  const deadline = Date.now() + Number(process.env.BENCH_DEADLINE_MS ?? 600000);
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function run(workerCount, { db, sink, redisEnv, redisPorts, cluster }) {
  await db.query('truncate mailjet_events, dedupe_keys');
  sink.reset();
  const prefix = `bench-scale-out-${Date.now()}`;
  const env = {
    DATABASE_URL, ...redisEnv, HOST: '127.0.0.1', QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn',
    DATABASE_POOL_SIZE: String(POOL_SIZE),
    MAILJET_WEBHOOK_USER: WEBHOOK_USER, MAILJET_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD, ADMIN_TOKEN: 'bench-admin-token-16',
    SEGMENT_WRITE_KEY: WRITE_KEY, SEGMENT_HOST: `http://127.0.0.1:${sink.port}`,
  };
  const queue = queueOf(prefix, cluster);
  await queue.pause();
  const apiPorts = Array.from({ length: APIS }, (_, i) => API_PORT + i);
  const apis = [];
  const workers = [];
  try {
    for (const port of apiPorts) {
      apis.push(await startProcess(`api ${port}`, startArgs('api'), { ...env, PORT: String(port) }, httpReady(`http://127.0.0.1:${port}/health/ready`)));
    }
    for (let i = 0; i < workerCount; i++) {
      const port = WORKER_PORT + i;
      workers.push(await startProcess(`worker ${i + 1}`, startArgs('worker'), { ...env, WORKER_HEALTH_PORT: String(port) },
        httpReady(`http://127.0.0.1:${port}/health/ready`)));
    }
    const rss = workers.map((worker) => sampleRss(worker.child.pid));
    const postgresPids = () => pidsOf(/^postgres/);
    const redisPids = pidsOf(new RegExp(`redis-server .*:(${redisPorts.join('|')})\\b`));
    const cpu = () => ({
      machine: machineTicks(), postgres: cpuOf(postgresPids()), redis: cpuOf(redisPids),
      apis: cpuOf(apis.map((api) => api.child.pid)), workers: cpuOf(workers.map((worker) => worker.child.pid)),
    });
    const beforePosting = cpu();
    const postSeconds = await postBacklog(apiPorts);
    const afterPosting = cpu();
    const { rows: [{ queued }] } = await db.query("select count(*)::int as queued from mailjet_events where status = 'queued'");
    const perThousand = (key, from, to) => ((to[key] - from[key]) / EVENTS) * 1000;
    const ingestCpu = { postgres: perThousand('postgres', beforePosting, afterPosting), apis: perThousand('apis', beforePosting, afterPosting) };

    const before = cpu();
    const started = Date.now();
    await queue.resume();
    await waitUntil(`${EVENTS} events at the sink`, () => sink.received.size >= EVENTS);
    const deliveredAt = Date.now();
    const forwardedRows = async () => (await db.query("select count(*)::int as n from mailjet_events where status = 'forwarded'")).rows[0].n;
    await waitUntil(`${EVENTS} rows marked forwarded`, async () => (await forwardedRows()) >= EVENTS);
    const doneAt = Date.now();
    const after = cpu();
    const peakRss = Math.max(...rss.map((stop) => stop()));
    const forwarded = await forwardedRows();
    const seconds = (doneAt - started) / 1000;
    // The backends that ended during the drain are missed: PostgreSQL's share is a lower bound.
    const share = (key) => (after[key] - before[key]) / (doneAt - started);
    const result = {
      workers: workerCount, postSeconds, queued, forwarded, duplicates: sink.deliveries - sink.received.size,
      ingestRate: EVENTS / postSeconds, seconds, rate: EVENTS / seconds, deliveredSeconds: (deliveredAt - started) / 1000, peakRss, ingestCpu,
      forwardCpu: { postgres: perThousand('postgres', before, after), workers: perThousand('workers', before, after) },
      cores: {
        workers: share('workers'), apis: share('apis'), postgres: share('postgres'), redis: share('redis'),
        machine: ((after.machine.busy - before.machine.busy) / (after.machine.total - before.machine.total)) * machineCores(),
      },
    };
    console.log(`${workerCount} worker(s): posted ${EVENTS} in ${postSeconds.toFixed(1)} s through ${APIS} apis (${Math.round(result.ingestRate)} events/s), ${queued} queued; ` +
      `all at the sink ${result.deliveredSeconds.toFixed(1)} s and all rows forwarded ${seconds.toFixed(1)} s after the queue was resumed: ${Math.round(result.rate)} events/s; ` +
      `${forwarded} forwarded, ${result.duplicates} sent twice; cores busy: workers ${result.cores.workers.toFixed(2)}, apis ${result.cores.apis.toFixed(2)}, ` +
      `PostgreSQL ${result.cores.postgres.toFixed(2)}, Redis ${result.cores.redis.toFixed(2)}, machine ${result.cores.machine.toFixed(2)} of ${machineCores()}; ` +
      `worker peak RSS ${mb(peakRss)} MB; CPU per 1,000 events: ingest PostgreSQL ${Math.round(ingestCpu.postgres)} ms and apis ${Math.round(ingestCpu.apis)} ms, ` +
      `forwarding PostgreSQL ${Math.round(result.forwardCpu.postgres)} ms and workers ${Math.round(result.forwardCpu.workers)} ms`);
    return result;
  } finally {
    for (const worker of workers) await worker.stop();
    for (const api of apis) await api.stop();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.closeAll();
  }
}

const machineCores = () => Number(execFileSync('nproc', { encoding: 'utf8' }).trim());

/** Replaces the generated section of docs/SCALING.md, leaving the rest as written. */
function updateScalingDoc(key, section) {
  const file = path.join(ROOT, 'docs/SCALING.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Scaling\n';
  const pattern = new RegExp(`<!-- ${key}:start -->[\\s\\S]*<!-- ${key}:end -->`);
  writeFileSync(file, pattern.test(text) ? text.replace(pattern, section) : `${text}\n${section}\n`);
}

async function main() {
  migrate(DATABASE_URL);
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  const sink = await startSink();
  const cluster = CLUSTER ? await startRedisCluster({ masters: 3, replicasPerMaster: 1 }) : undefined;
  const redisEnv = cluster ? { REDIS_CLUSTER_NODES: cluster.nodes } : { REDIS_URL };
  const redisPorts = cluster ? cluster.nodes.split(',').map((node) => node.split(':').pop()) : [new URL(REDIS_URL).port || '6379'];
  const results = [];
  try {
    for (const workers of WORKERS) results.push(await run(workers, { db, sink, redisEnv, redisPorts, cluster }));
  } finally {
    await db.end();
    sink.server.close();
    await cluster?.stop();
  }
  const base = results[0].rate / results[0].workers;
  const cores = (value) => value.toFixed(2);
  // One section per kind of Redis, so that a run on one Redis (BENCH_REDIS=single) sits beside the cluster's.
  const key = CLUSTER ? 'scale-out' : 'scale-out-single';
  updateScalingDoc(key, [
    `<!-- ${key}:start -->`,
    `Last \`npm run bench:scale-out\`: ${new Date().toISOString()}, ${machine()}; ${CLUSTER ? 'a 3-master Redis Cluster (3 replicas) of Debian\'s redis-server' : 'one Redis'}, ` +
      `${APIS} apis, one PostgreSQL 15; ${EVENTS} grouped events (${PER_REQUEST} a callback) per row, posted across the apis with the workers stopped, ` +
      `then drained by the workers let loose together (from a paused queue) until every row was \`forwarded\`; \`DATABASE_POOL_SIZE=${POOL_SIZE}\`, \`WORKER_CONCURRENCY\` 50 (default). ` +
      'Cores: CPU time over the drain divided by its wall time (PostgreSQL\'s is a lower bound: backends that ended are not counted).',
    '',
    '| workers | ingest through the apis | drained | events/s forwarded | per worker | vs linear | sent twice | cores: workers | apis | PostgreSQL | Redis | machine | worker peak RSS | CPU ms per 1,000 events: ingest (PostgreSQL + apis) | forwarding (PostgreSQL + workers) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) => `| ${r.workers} | ${Math.round(r.ingestRate)} events/s | ${r.seconds.toFixed(1)} s | **${Math.round(r.rate)}** | ` +
      `${Math.round(r.rate / r.workers)} | ${(r.rate / (base * r.workers)).toFixed(2)} | ${r.duplicates} | ${cores(r.cores.workers)} | ${cores(r.cores.apis)} | ` +
      `${cores(r.cores.postgres)} | ${cores(r.cores.redis)} | ${cores(r.cores.machine)} of ${machineCores()} | ${mb(r.peakRss)} MB | ` +
      `${Math.round(r.ingestCpu.postgres)} + ${Math.round(r.ingestCpu.apis)} | ${Math.round(r.forwardCpu.postgres)} + ${Math.round(r.forwardCpu.workers)} |`),
    `<!-- ${key}:end -->`,
  ].join('\n'));
  if (results.some((r) => r.duplicates > 0 || r.forwarded !== EVENTS)) {
    console.error('some events were sent twice or not marked forwarded');
    process.exit(1);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
