#!/usr/bin/env node
// npm run bench: the product's api (production build) against the bare reference
// (../shared/bench/bare-reference.mjs), same PostgreSQL, same Redis, same bodies and connections,
// alternating rounds, medians. Prints the table and writes it to docs/BENCHMARKS.md.
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { Queue } from 'bullmq';
import pg from 'pg';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  BASIC_AUTH, DATABASE_URL, REDIS_URL, ROOT, WEBHOOK_PASSWORD, WEBHOOK_USER,
  cpuMs, groupedBody, httpReady, machine, mb, median, migrate, openEvent, sampleRss, startArgs, startProcess, updateBenchmarksDoc,
  queueKeyPrefix,
} from './support.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURATION_S = Number(process.env.BENCH_SECONDS ?? 10);
const BARE = path.resolve(ROOT, '../shared/bench/bare-reference.mjs');
const PRODUCT_PORT = 3998;
const BARE_PORT = 3999;

// BENCH_SCENARIO=grouped (or single) runs one of them, for a quicker look.
const SCENARIOS = [
  { name: 'single event', connections: 50, eventsPerRequest: 1, body: openEvent },
  { name: 'grouped, 100 events', connections: 10, eventsPerRequest: 100, body: () => groupedBody(100) },
].filter((scenario) => scenario.name.startsWith(process.env.BENCH_SCENARIO ?? ''));

const TARGETS = {
  api: {
    name: 'product',
    url: `http://127.0.0.1:${PRODUCT_PORT}/webhooks/mailjet`,
    headers: { 'content-type': 'application/json', authorization: BASIC_AUTH },
  },
  bare: { name: 'bare reference', url: `http://127.0.0.1:${BARE_PORT}/events`, headers: { 'content-type': 'application/json' } },
};

async function load(target, scenario, pid) {
  const stopSampling = sampleRss(pid);
  const cpuBefore = cpuMs(pid);
  const result = await autocannon({
    url: target.url,
    method: 'POST',
    connections: scenario.connections,
    duration: DURATION_S,
    headers: target.headers,
    requests: [{ setupRequest: (request) => ({ ...request, body: scenario.body() }) }],
  });
  const peakRss = stopSampling();
  const cpu = cpuMs(pid) - cpuBefore;
  const ok = result['2xx'];
  if (result.non2xx > 0 || result.errors > 0) {
    console.warn(`  ${target.name}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  }
  const seconds = result.duration;
  return {
    requestsPerSecond: ok / seconds,
    eventsPerSecond: (ok * scenario.eventsPerRequest) / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    peakRss,
    cpuMsPerThousandEvents: (cpu / (ok * scenario.eventsPerRequest)) * 1000,
  };
}

/** Each load starts from empty tables and queues, so that neither side inherits the other's backlog. */
async function emptyStores(productQueue, db) {
  await productQueue.obliterate({ force: true });
  await db.query('truncate mailjet_events, dedupe_keys');
  execFileSync(process.execPath, [BARE, '--drain'], { cwd: ROOT, env: { ...process.env, DATABASE_URL, REDIS_URL }, stdio: 'ignore' });
  await db.query('vacuum analyze mailjet_events');
}

async function main() {
  if (!existsSync(BARE)) throw new Error(`the bare reference is not at ${BARE}`);
  migrate();
  const prefix = `bench-${Date.now()}`;
  const productQueue = new Queue('mailjet-events', { connection: { url: REDIS_URL }, prefix: queueKeyPrefix(prefix) });
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  const api = await startProcess(
    'api',
    startArgs('api'),
    {
      DATABASE_URL, REDIS_URL, PORT: String(PRODUCT_PORT), HOST: '127.0.0.1', QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn',
      MAILJET_WEBHOOK_USER: WEBHOOK_USER, MAILJET_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD, ADMIN_TOKEN: 'bench-admin-token-16',
    },
    httpReady(`http://127.0.0.1:${PRODUCT_PORT}/health/live`),
  );
  const bare = await startProcess('bare reference', [BARE], { DATABASE_URL, REDIS_URL, PORT: String(BARE_PORT) }, httpReady(`http://127.0.0.1:${BARE_PORT}/`));
  const results = [];
  try {
    for (const scenario of SCENARIOS) {
      const runs = { api: [], bare: [] };
      for (let round = 1; round <= ROUNDS; round++) {
        // Alternate which goes first, so that neither always meets a warmer machine.
        const order = round % 2 ? ['api', 'bare'] : ['bare', 'api'];
        for (const key of order) {
          await emptyStores(productQueue, db);
          const process = key === 'api' ? api : bare;
          const run = await load(TARGETS[key], scenario, process.child.pid);
          runs[key].push(run);
          console.log(
            `${scenario.name}, round ${round}, ${TARGETS[key].name}: ${Math.round(run.requestsPerSecond)} req/s, ` +
              `${Math.round(run.eventsPerSecond)} events/s, p50 ${run.p50} ms, p99 ${run.p99} ms, peak RSS ${mb(run.peakRss)} MB, ` +
              `${Math.round(run.cpuMsPerThousandEvents)} ms of CPU per 1,000 events`,
          );
        }
      }
      const summary = (list) => ({
        requestsPerSecond: median(list.map((r) => r.requestsPerSecond)),
        eventsPerSecond: median(list.map((r) => r.eventsPerSecond)),
        p50: median(list.map((r) => r.p50)),
        p99: median(list.map((r) => r.p99)),
        peakRss: Math.max(...list.map((r) => r.peakRss)),
      });
      results.push({ scenario, product: summary(runs.api), reference: summary(runs.bare) });
    }
  } finally {
    await api.stop();
    await bare.stop();
    await emptyStores(productQueue, db);
    await productQueue.close();
    await db.end();
  }
  report(results);
}

function report(results) {
  const header = '| scenario | | req/s | events/s | p50 ms | p99 ms | peak RSS MB |\n|---|---|---|---|---|---|---|';
  const rows = results.flatMap(({ scenario, product, reference }) => [
    `| ${scenario.name} (${scenario.connections} connections) | product | ${Math.round(product.requestsPerSecond)} | ${Math.round(product.eventsPerSecond)} | ${product.p50} | ${product.p99} | ${mb(product.peakRss)} |`,
    `| | bare reference | ${Math.round(reference.requestsPerSecond)} | ${Math.round(reference.eventsPerSecond)} | ${reference.p50} | ${reference.p99} | ${mb(reference.peakRss)} |`,
    `| | **ratio** | **${(product.requestsPerSecond / reference.requestsPerSecond).toFixed(2)}x** | ${(product.eventsPerSecond / reference.eventsPerSecond).toFixed(2)}x | | p99 ${(product.p99 / reference.p99).toFixed(2)}x | |`,
  ]);
  const table = [header, ...rows].join('\n');
  console.log(`\n${table}\n`);
  const section = [
    '<!-- ingest:start -->',
    `Last \`npm run bench\`: ${new Date().toISOString()}, ${machine()}; ${ROUNDS} alternating rounds of ${DURATION_S} s each, medians (peak RSS: the highest).`,
    '',
    table,
    '<!-- ingest:end -->',
  ].join('\n');
  if (process.env.BENCH_SCENARIO) console.log('(one scenario: docs/BENCHMARKS.md left as it is)');
  else updateBenchmarksDoc('ingest', section);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
