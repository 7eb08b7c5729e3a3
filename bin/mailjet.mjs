#!/usr/bin/env node
// npm run mailjet -- callbacks ensure|status [--source <slug>] [--replace]
// npm run mailjet -- backfill --from <ISO 8601> --to <ISO 8601> [--source <slug>]
//
// A client of the running api's admin API (SPEC section 9): BRIDGE_URL (default
// http://localhost:$PORT, PORT 3000) and ADMIN_TOKEN from the environment. Nothing here reads
// the database or holds Mailjet keys: the api does the work and keeps it going if this stops.
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';

const USAGE = `usage:
  npm run mailjet -- callbacks ensure [--source <slug>] [--replace]
  npm run mailjet -- callbacks status [--source <slug>]
  npm run mailjet -- backfill --from <ISO 8601> --to <ISO 8601> [--source <slug>]
environment: BRIDGE_URL (default http://localhost:3000), ADMIN_TOKEN (required)`;

const POLL_MS = 500;

class UsageError extends Error {}

function fail(message, code = 1) {
  console.error(message);
  process.exit(code);
}

function settings() {
  const token = process.env.ADMIN_TOKEN;
  if (!token) throw new UsageError('ADMIN_TOKEN is required (the api\'s admin token)');
  const base = (process.env.BRIDGE_URL ?? `http://localhost:${process.env.PORT ?? 3000}`).replace(/\/+$/, '');
  return { base, token };
}

async function call({ base, token }, method, path, body, whileRunning) {
  let response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(120_000),
    });
  } catch (error) {
    const reason = error.name === 'TimeoutError' ? 'no answer within 120 s' : (error.cause?.message ?? error.message);
    fail(`cannot reach the api at ${base}: ${reason}${whileRunning ? `; ${whileRunning}` : ' (is it running? BRIDGE_URL says where)'}`);
  }
  const text = await response.text();
  let answer;
  try {
    answer = text === '' ? {} : JSON.parse(text);
  } catch {
    answer = { message: text };
  }
  if (!response.ok) {
    const message = Array.isArray(answer.message) ? answer.message.join('; ') : (answer.message ?? response.statusText);
    fail(`${method} ${path}: ${response.status} ${message}`);
  }
  return answer;
}

const pad = (text, width) => String(text).padEnd(width);

async function callbacks(api, action, { source, replace }) {
  const path = `/admin/sources/${encodeURIComponent(source)}/mailjet/callbacks`;
  if (action === 'ensure') {
    const { callbacks } = await call(api, 'POST', path, replace ? { replace: true } : {});
    console.log(`source ${source}: Mailjet event callbacks`);
    for (const c of callbacks) {
      const note = c.action === 'conflict' ? `points at ${c.url} (--replace to take it over)` : '';
      console.log(`  ${pad(c.eventType, 8)} ${pad(c.action, 10)} ${pad(c.status, 6)} ${note}`.trimEnd());
    }
    const counts = {};
    for (const c of callbacks) counts[c.action] = (counts[c.action] ?? 0) + 1;
    console.log(`${callbacks.length} event types: ${Object.entries(counts).map(([action, n]) => `${n} ${action}`).join(', ')}`);
    // A conflict is left as it was: the run did not reach the desired state.
    if (counts.conflict) process.exitCode = 3;
    return;
  }
  if (action === 'status') {
    const { callbacks } = await call(api, 'GET', path);
    console.log(`source ${source}: ${callbacks.length} callback(s) at Mailjet`);
    for (const c of callbacks) {
      const kind = c.isBackup ? 'backup' : 'primary';
      console.log(`  ${pad(c.eventType, 8)} ${pad(kind, 8)} ${pad(c.status, 6)} v${c.version} ${c.ours === null ? 'unknown     ' : c.ours ? 'this source ' : 'elsewhere   '} ${c.url}`);
    }
    const dead = callbacks.filter((c) => c.ours && c.status === 'dead');
    if (dead.length > 0) {
      console.log(`${dead.length} suspended: npm run mailjet -- callbacks ensure --source ${source} re-arms them`);
      process.exitCode = 3;
    }
    return;
  }
  throw new UsageError(`unknown callbacks action: ${action}`);
}

async function backfill(api, { source, from, to }) {
  if (!from || !to) throw new UsageError('backfill needs --from and --to (ISO 8601, e.g. 2026-11-01T00:00:00Z)');
  const { id } = await call(api, 'POST', `/admin/sources/${encodeURIComponent(source)}/backfills`, { from, to });
  console.log(`backfill ${id} of source ${source}, messages that arrived in [${from}, ${to}); Ctrl-C cancels it`);
  let cancelled = false;
  process.once('SIGINT', () => {
    cancelled = true;
  });
  const bar = new cliProgress.SingleBar(
    {
      format: ' {bar} {percentage}% | {value}/{total} messages | {eventsNew} new, {eventsKnown} known',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5000,
    },
    cliProgress.Presets.shades_classic,
  );
  // The backfill runs in the api: if this command loses it, the backfill goes on.
  const meanwhile = `backfill ${id} goes on in the api: GET /admin/backfills/${id} follows it`;
  let progress = await call(api, 'GET', `/admin/backfills/${id}`, undefined, meanwhile);
  let started = false;
  for (;;) {
    // The bar starts once Mailjet said how many messages the window holds (an empty bar is not a full one).
    if (!started && progress.messagesTotal !== null) {
      bar.start(progress.messagesTotal, 0, { eventsNew: 0, eventsKnown: 0 });
      started = true;
    }
    if (started) bar.update(progress.messagesScanned, { eventsNew: progress.eventsNew, eventsKnown: progress.eventsKnown });
    if (progress.status !== 'running') break;
    if (cancelled) {
      progress = await call(api, 'DELETE', `/admin/backfills/${id}`, undefined, meanwhile);
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    progress = await call(api, 'GET', `/admin/backfills/${id}`, undefined, meanwhile);
  }
  if (started) bar.stop();
  console.log(
    `backfill ${id} ${progress.status}: ${progress.messagesScanned} messages, ${progress.eventsFound} events found, ` +
      `${progress.eventsNew} new (stored and forwarded), ${progress.eventsKnown} already received`,
  );
  if (progress.error) console.log(`reason: ${progress.error}`);
  if (progress.status !== 'done') process.exitCode = 1;
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      source: { type: 'string', default: 'default' },
      replace: { type: 'boolean', default: false },
      from: { type: 'string' },
      to: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length === 0) return console.log(USAGE);
  const api = settings();
  const [command, action] = positionals;
  if (command === 'callbacks') return callbacks(api, action, values);
  if (command === 'backfill') return backfill(api, values);
  throw new UsageError(`unknown command: ${command}`);
}

main().catch((error) => {
  if (error instanceof UsageError || String(error.code).startsWith('ERR_PARSE_ARGS')) fail(`${error.message}\n${USAGE}`, 2);
  fail(error.stack ?? String(error));
});
