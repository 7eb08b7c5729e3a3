#!/usr/bin/env node
// The analysts' views (docs/SQL.md) on a table of BENCH_EVENTS (default 300,000) stored events:
// the plan and time of the count that must use the event_time index and read no JSON, of every
// column of every row, and of the README's three queries.
//   npm run bench:views       (its own database, BENCH_VIEWS_DATABASE_URL; refilled at every run)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { ROOT, machine, median } from './support.mjs';

const DATABASE_URL = process.env.BENCH_VIEWS_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/mailjet_segment_bench_views';
const EVENTS = Number(process.env.BENCH_EVENTS ?? 300_000);
const ROUNDS = 3;

execFileSync(process.execPath, ['--experimental-wasm-modules', '--disable-warning=ExperimentalWarning', 'prisma/migrate.mjs'], {
  cwd: ROOT,
  env: { ...process.env, DATABASE_URL },
  stdio: 'inherit',
});

const client = new pg.Client({ connectionString: DATABASE_URL });
await client.connect();

// Events over the last 60 days, in Mailjet's shapes and proportions of a newsletter: a third with a
// userId in Payload, 2% second deliveries (duplicate), 1% junk (invalid), one in a thousand with a
// \u0000 in a string; identities for one recipient in seven.
console.log(`filling ${EVENTS} events...`);
await client.query('truncate mailjet_events, dedupe_keys, identities');
await client.query(
  `insert into mailjet_events (payload, event_type, event_time, email, message_id, message_guid, dedupe_key, status, received_at, forwarded_at)
   select case when g % 1000 = 0 then replace(payload, 'campaign ', 'campaign\\u0000 ') else payload end::json,
          type, to_timestamp(time), email, message_id::text, 'guid-' || message_id, message_id || ':' || type || ':' || time,
          case when g % 50 = 0 then 'duplicate' when g % 97 = 0 then 'invalid' else 'forwarded' end::event_status,
          to_timestamp(time + 2), to_timestamp(time + 3)
   from (
     select g, type, time, message_id, email,
            json_build_object('event', type, 'time', time, 'MessageID', message_id, 'Message_GUID', 'guid-' || message_id, 'email', email,
              'mj_campaign_id', 7000 + g % 40, 'mj_contact_id', g % 5000,
              'customcampaign', 'campaign ' || (g % 40),
              'CustomID', 'c' || g, 'Payload', case when g % 3 = 0 then '{"userId":"u' || (g % 5000) || '"}' else '' end,
              'ip', '127.0.0.1', 'geo', 'FR',
              'agent', 'Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/43.0.2357.81 Safari/537.36',
              'url', 'https://example.com/link/' || (g % 25), 'mj_list_id', 1 + g % 3, 'hard_bounce', g % 2 = 0, 'blocked', false,
              'error_related_to', 'recipient', 'error', case when g % 2 = 0 then 'user unknown' else 'mailbox full' end,
              'comment', 'Host or domain name not found', 'source', 'JMRPP',
              'smtp_reply', 'sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)')::text as payload
     from (
       select g, (array['sent','sent','sent','open','open','click','bounce','blocked','spam','unsub'])[1 + g % 10] as type,
              extract(epoch from now())::bigint - (g * 17) % (60 * 86400) as time,
              19421777835146490::numeric + g as message_id, 'reader' || (g % 5000) || '@example.com' as email
       from generate_series(1, $1::int) g
     ) numbered
   ) events`,
  [EVENTS],
);
await client.query(`insert into identities (email, user_id) select 'reader' || g || '@example.com', 'id-' || g from generate_series(1, 5000, 7) g`);
await client.query('vacuum analyze mailjet_events');
await client.query('vacuum analyze identities');
const [{ nul }] = (await client.query(`select count(*)::int as nul from mailjet_events where strpos(payload::text, '\\u0000') > 0`)).rows;
console.log(`${nul} payloads hold \\u0000`);

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const section = readme.split(/^## /m).find((part) => part.startsWith("Analysts' SQL\n"));
const [rates, bounces, links] = [...section.matchAll(/^```sql\n([\s\S]*?)^```$/gm)].map((match) => match[1]);

const COUNT_LAST_DAY = `select count(*) from mailjet.email_opened where "timestamp" > now() - interval '1 day'`;
const queries = [
  ['count of the last day (email_opened)', COUNT_LAST_DAY],
  ['every column of every row (tracks)', 'select * from mailjet.tracks'],
  ['every column of every row (email_bounced)', 'select * from mailjet.email_bounced'],
  ['events per campaign (tracks)', 'select campaign_id, count(*) from mailjet.tracks group by 1'],
  ['user_id per event (tracks)', 'select count(user_id) from mailjet.tracks'],
  ['README: open and click rates', rates],
  ['README: bounce reasons', bounces],
  ['README: links clicked most', links],
];

console.log(`\nEXPLAIN (ANALYZE, BUFFERS, VERBOSE) ${COUNT_LAST_DAY}\n`);
const plan = await client.query(`explain (analyze, buffers, verbose) ${COUNT_LAST_DAY}`);
console.log(plan.rows.map((row) => row['QUERY PLAN']).join('\n'));

console.log(`\nanalysts' views on ${machine()}, ${EVENTS} events, median of ${ROUNDS} (EXPLAIN ANALYZE, TIMING OFF: rows computed, not sent)\n`);
console.log('| query | rows | ms |');
console.log('|---|---|---|');
for (const [label, sql] of queries) {
  const times = [];
  let rows = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const { rows: result } = await client.query(`explain (analyze, timing off, format json) ${sql}`);
    const [{ Plan: top, 'Execution Time': ms }] = result[0]['QUERY PLAN'];
    times.push(ms);
    rows = top['Actual Rows'];
  }
  console.log(`| ${label} | ${rows} | ${median(times).toFixed(0)} |`);
}
await client.end();
