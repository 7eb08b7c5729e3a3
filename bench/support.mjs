// Shared pieces of the benchmarks: processes, memory sampling, medians, the bench database.
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/mailjet_segment_bench';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const WEBHOOK_USER = 'bench';
export const WEBHOOK_PASSWORD = 'bench-webhook-password';
export const BASIC_AUTH = `Basic ${Buffer.from(`${WEBHOOK_USER}:${WEBHOOK_PASSWORD}`).toString('base64')}`;

export function migrate(url = DATABASE_URL) {
  execFileSync(process.execPath, ['--experimental-wasm-modules', '--disable-warning=ExperimentalWarning', 'prisma/migrate.mjs'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url },
    stdio: 'inherit',
  });
}

/**
 * The arguments of `npm run start:<app>` (`node <flags> <entry>`), so that the benchmarks run the
 * processes exactly as the image and docker compose start them, V8 flags included.
 */
export function startArgs(app) {
  const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const [command, ...args] = scripts[`start:${app}`].split(/\s+/);
  if (command !== 'node') throw new Error(`start:${app} must be "node <flags> <entry>", not ${scripts[`start:${app}`]}`);
  return args;
}

/** Starts a Node.js process and resolves once `ready()` answers true. */
export async function startProcess(name, args, env, ready) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  child.stdout.on('data', (chunk) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk) => output.push(chunk.toString()));
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${output.join('').slice(-2000)}`);
    if (await ready().catch(() => false)) break;
    if (Date.now() > deadline) throw new Error(`${name} did not start: ${output.join('').slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    child,
    output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

export const httpReady = (url) => async () => (await fetch(url)).status < 500;

/** CPU time a process has used so far, user and system, in milliseconds (from /proc). */
export function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat, counted in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

/** Samples a process's resident memory every 100 ms; `stop()` returns the peak. */
export function sampleRss(pid) {
  let peak = 0;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      /* the process ended */
    }
  }, 100);
  return () => {
    clearInterval(timer);
    return peak;
  };
}

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

export const mb = (bytes) => Math.round(bytes / 2 ** 20);

const TYPES = ['sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub'];
let nextMessageId = 1152921505370435042n + BigInt(Date.now()) * 1000n;

/** Mailjet's documented open example, with a MessageID of its own. */
export function openEvent() {
  const id = (nextMessageId++).toString();
  return `{"event":"open","time":1433103519,"MessageID":${id},"Message_GUID":"1ab23cd4-e567-8901-2345-6789f0gh1i2j","email":"api@mailjet.com","mj_campaign_id":7173,"mj_contact_id":320,"customcampaign":"","CustomID":"helloworld","Payload":"","ip":"127.0.0.1","geo":"US","agent":"Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0"}`;
}

/** A grouped callback of `size` mixed events. */
export function groupedBody(size) {
  const events = [];
  for (let i = 0; i < size; i++) {
    const id = (nextMessageId++).toString();
    const type = TYPES[i % TYPES.length];
    const extra = type === 'click' ? ',"url":"https://mailjet.com"' : type === 'unsub' ? ',"mj_list_id":1' : '';
    events.push(
      `{"event":"${type}","time":${1433103519 + i},"MessageID":${id},"Message_GUID":"1ab23cd4-e567-8901-2345-6789f0gh1i2j","email":"user${i}@example.com","mj_campaign_id":7173,"mj_contact_id":${i},"customcampaign":"","CustomID":"","Payload":""${extra}}`,
    );
  }
  return `[${events.join(',')}]`;
}

export const machine = () =>
  `${os.cpus().length} cores (${os.cpus()[0]?.model}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node.js ${process.version}`;

/** Replaces one generated section of docs/BENCHMARKS.md, leaving the rest as written. */
export function updateBenchmarksDoc(key, section) {
  const file = path.join(ROOT, 'docs/BENCHMARKS.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const pattern = new RegExp(`<!-- ${key}:start -->[\\s\\S]*<!-- ${key}:end -->`);
  writeFileSync(file, pattern.test(text) ? text.replace(pattern, section) : `${text}\n${section}\n`);
}

/**
 * The prefix of the queue's keys as the processes make it from QUEUE_PREFIX (a hash tag on a Redis
 * Cluster): the built function itself (`nest build api` first), so that a bench names keys as they do.
 */
export function queueKeyPrefix(prefix, cluster = false) {
  const require = createRequire(import.meta.url);
  return require(path.join(ROOT, 'dist/apps/api/libs/queue/src/redis-connections.js')).queueKeyPrefix(prefix, cluster);
}

/**
 * A local Segment-compatible sink: answers every /v1/batch with 200, keeps the distinct messageIds
 * (`received`), counts every event delivered (`deliveries`: more than `received.size` when one was
 * sent twice) and when the first batch came. `reset()` between runs.
 */
export function startSink() {
  const sink = {
    received: new Set(),
    deliveries: 0,
    firstAt: 0,
    reset() {
      sink.received.clear();
      sink.deliveries = 0;
      sink.firstAt = 0;
    },
  };
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const { batch } = JSON.parse(Buffer.concat(chunks).toString());
      sink.firstAt ||= Date.now();
      sink.deliveries += batch.length;
      for (const event of batch) sink.received.add(event.messageId);
      if (process.env.BENCH_DEBUG) console.log(`${Date.now() % 100000} batch of ${batch.length}`);
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"success":true}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(Object.assign(sink, { server, port: server.address().port }))));
}
