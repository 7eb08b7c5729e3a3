import { SourceDirectory } from '@app/sources';
import { ApiHarness } from './support/api-harness';
import { dropDatabase, migrateDatabase, ownDatabaseUrl, TestDatabase } from './support/database';
import { testConfig } from './support/test-env';

const BEFORE = '20261127130000_mailjet_rest';

/** The name of the partition of the UTC month `offset` months from this one. */
function monthName(offset: number, prefix = 'mailjet_events_'): string {
  const now = new Date();
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
  return `${prefix}${start.getUTCFullYear()}_${String(start.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * An installation's life before partitioning, in SQL: events of three sources over five months,
 * stored `queued` and moved on to every status by later statements (so that the counters' triggers
 * saw inserts and updates, some folded, some not), with their dedupe keys, and payloads whose text
 * must survive byte for byte (spacing, key order, a MessageID beyond 2^53, escapes).
 */
const LIFE_BEFORE_PARTITIONING = `
  insert into sources (slug, name, destination_preset, destination_host, webhook_user)
  values ('migrationsource2', 'second', 'segment-us', 'https://api.segment.io', 'second'),
         ('migrationsource3', 'third', 'segment-eu', 'https://events.eu1.segmentapis.com', 'third');

  insert into mailjet_events (payload, event_type, event_time, email, message_id, message_guid, dedupe_key, status, received_at,
                              source_id, job_id, queued_at, origin)
  select format('{ "event" : "%s","time":%s, "MessageID": %s,  "email":"u%s@example.com", "Payload":"{\\"userId\\": \\"u-%s\\"}", "x":1.50 }',
                t.type, 1433103519 + g, 19421777396190490 + g, g, g)::json,
         t.type, to_timestamp(1433103519 + g), 'u' || g || '@example.com', (19421777396190490 + g)::text, 'guid-' || g,
         (19421777396190490 + g) || '|' || t.type || '|' || (1433103519 + g),
         'queued', now() - make_interval(months => g % 5, mins => g % 90), 1 + g % 3,
         case when g % 40 = 0 then null when g % 40 = 1 then 'paused' else 'ingest-' || (g / 100) || '-0' end,
         now() - make_interval(months => g % 5), case when g % 7 = 0 then 'backfill' else 'webhook' end::event_origin
  from generate_series(1, 720) g
  cross join lateral (select (array['sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub', 'open'])[1 + g % 8] as type) t;

  insert into mailjet_events (payload, event_type, status, last_error, received_at, source_id)
  select format('{"event":"%s","email":""}', type)::json, type, 'invalid', 'no usable time', now() - make_interval(months => n % 5), 1 + n % 3
  from generate_series(1, 30) n cross join lateral (select case when n % 2 = 0 then 'open' else 'junk-type-' || n end as type) t;

  select fold_event_counts();

  update mailjet_events set status = 'forwarded', attempts = 1, forwarded_at = now() - make_interval(months => id::int % 5),
         segment_message_id = 'mj-' || id
  where status = 'queued' and id % 6 in (0, 1);
  update mailjet_events set status = 'failed', attempts = 10, last_error = 'Segment answered 400: bad ' || id where status = 'queued' and id % 6 = 2;
  update mailjet_events set status = 'received', queued_at = null, job_id = null where status = 'queued' and id % 6 = 3;
  insert into dedupe_keys (dedupe_key, event_id) select dedupe_key, id from mailjet_events where status in ('forwarded', 'failed');
  update mailjet_events d set status = 'duplicate', duplicate_of = o.id
  from mailjet_events o where d.status = 'queued' and d.id % 6 = 4 and o.id = d.id - 4;
`;

describe(`migration 20261127140000_partitioned_events, from ${BEFORE} (a database of its own)`, () => {
  const urls: string[] = [];

  async function databaseBefore(label: string): Promise<TestDatabase> {
    const url = ownDatabaseUrl(label);
    urls.push(url);
    await migrateDatabase(url, BEFORE);
    return new TestDatabase(url);
  }

  const rowsOf = (db: TestDatabase) =>
    db.query<{ row: string }>('select row_to_json(e)::text as row from mailjet_events e order by e.id').then((rows) => rows.map((r) => r.row));

  afterAll(async () => {
    for (const url of urls) await dropDatabase(url);
  });

  it('turns the table into its first partition in place: every event as it was, counters exact, and the api at work on it', async () => {
    const db = await databaseBefore('migration');
    let api: ApiHarness | undefined;
    try {
      await db.query(LIFE_BEFORE_PARTITIONING.replace(/;\s*$/, ''));
      // `order by status`: the enum's order, not the text's.
      const statuses = await db.query<{ status: string }>('select status::text from mailjet_events e group by e.status order by e.status');
      expect(statuses.map((row) => row.status)).toEqual(['received', 'queued', 'forwarded', 'duplicate', 'failed', 'invalid']);
      expect(await db.query('select count(distinct source_id)::int as sources, count(*)::int as events from mailjet_events')).toEqual([
        { sources: 3, events: 750 },
      ]);
      expect((await db.query<{ n: number }>('select count(*)::int as n from event_count_deltas'))[0].n).toBeGreaterThan(0);
      const rowsBefore = await rowsOf(db);
      const keysBefore = await db.query('select * from dedupe_keys order by dedupe_key');
      const indexesBefore = await db.query<{ indexname: string }>(`select indexname from pg_indexes where tablename = 'mailjet_events' order by 1`);
      const [{ filenode, maxId }] = await db.query<{ filenode: string; maxId: string }>(
        `select pg_relation_filenode('mailjet_events')::text as filenode, max(id)::text as "maxId" from mailjet_events`,
      );

      await migrateDatabase(db.url);

      // In place: the first partition is the table of before, the same file on disk, never rewritten.
      const first = monthName(1, 'mailjet_events_before_');
      expect(await db.query(`select pg_relation_filenode($1)::text as filenode`, [first])).toEqual([{ filenode }]);
      expect(await db.query('select tableoid::regclass::text as partition, count(*)::int as n from mailjet_events group by 1')).toEqual([
        { partition: first, n: 750 },
      ]);
      expect(await db.query('select name, from_time::text, is_default from event_partitions()')).toEqual([
        { name: first, from_time: '-infinity', is_default: false },
        ...[1, 2, 3].map((offset) => ({ name: monthName(offset), from_time: expect.any(String), is_default: false })),
        { name: 'mailjet_events_default', from_time: null, is_default: true },
      ]);
      expect(await rowsOf(db)).toEqual(rowsBefore);
      expect(await db.query('select * from dedupe_keys order by dedupe_key')).toEqual(keysBefore);
      expect(await db.query(`select indexname from pg_indexes where tablename = 'mailjet_events' order by 1`)).toEqual(indexesBefore);
      expect(await db.query(`select tgname::text from pg_trigger where tgrelid = 'mailjet_events'::regclass order by 1`)).toEqual(
        ['insert', 'update', 'delete', 'truncate'].sort().map((what) => ({ tgname: `mailjet_events_count_${what}` })),
      );
      expect(await db.query(`select count(*)::int as n from pg_trigger where tgrelid = $1::regclass`, [first])).toEqual([{ n: 0 }]);

      async function expectCountersToMatchRows(): Promise<void> {
        await db.query('select fold_event_counts()');
        const counters = await db.query(
          `select source_id, status::text, event_type, sum(count)::int as n from event_counts group by 1, 2, 3 having sum(count) <> 0 order by 1, 2, 3`,
        );
        const rows = await db.query(
          `select source_id, status::text, counted_event_type(event_type) as event_type, count(*)::int as n from mailjet_events
           group by 1, 2, 3 order by 1, 2, 3`,
        );
        expect(counters).toEqual(rows);
      }
      await expectCountersToMatchRows();
      // The counts of before are all the first partition's: dropping it subtracts them.
      expect(await db.query('select distinct received_month::text from event_counts')).toEqual([{ received_month: '-infinity' }]);

      // The api on the converted table: ingest, admin reads, requeues (updates), the counters.
      api = await ApiHarness.start(testConfig({ DATABASE_URL: db.url }));
      await api.app.get(SourceDirectory).reload();
      const posted = await api.postWebhook(
        `{"event":"open","time":1433103519,"MessageID":19421777396199999,"email":"after@example.com"}`,
      );
      expect(posted.statusCode).toBe(200);
      const [added] = await db.query<{ id: string; partition: string; status: string; job_id: string }>(
        `select id::text, tableoid::regclass::text as partition, status::text, job_id from mailjet_events where email = 'after@example.com'`,
      );
      expect(BigInt(added.id)).toBe(BigInt(maxId) + 1n);
      expect(added).toMatchObject({ partition: first, status: 'queued', job_id: expect.stringMatching(/^ingest-\d+-0$/) });
      // A row written without a job keeps none: job_id has no default.
      const [direct] = await db.query<{ job_id: string | null }>(`insert into mailjet_events (payload, event_type) values ('{}', 'open') returning job_id`);
      expect(direct.job_id).toBeNull();
      await db.query(`delete from mailjet_events where payload::text = '{}'`);

      const failed = await db.query<{ id: string }>(`select e.id::text from mailjet_events e where e.status = 'failed' order by e.id desc`);
      const listed = await api.admin('GET', '/admin/events?status=failed&limit=500');
      expect(listed.json().items.map((item: { id: string }) => item.id)).toEqual(failed.map((row) => row.id));
      const [old] = await db.query<{ id: string; payload: string }>(
        `select e.id::text, e.payload::text from mailjet_events e where e.status = 'forwarded' and e.source_id = 2 order by e.id limit 1`,
      );
      const detail = await api.admin('GET', `/admin/events/${old.id}`);
      expect(detail.statusCode).toBe(200);
      // The payload is embedded as the text received.
      expect(detail.body).toContain(`"payload":${old.payload}`);
      expect(detail.json().source).toBe('migrationsource2');

      const requeue = await api.admin('POST', `/admin/events/${failed[0].id}/requeue`);
      expect(requeue.statusCode).toBe(200);
      expect(await db.query('select status::text from mailjet_events where id = $1', [failed[0].id])).toEqual([{ status: 'queued' }]);
      const [{ n: failedClicks }] = await db.query<{ n: number }>(`select count(*)::int as n from mailjet_events where status = 'failed' and event_type = 'click'`);
      expect(failedClicks).toBeGreaterThan(0);
      expect((await api.admin('POST', '/admin/requeue', { status: 'failed', type: 'click' })).json()).toEqual({ requeued: failedClicks });

      await expectCountersToMatchRows();
      const byStatus = Object.fromEntries(
        (await db.query<{ status: string; n: number }>('select status::text, count(*)::int as n from mailjet_events group by 1')).map((row) => [
          row.status,
          row.n,
        ]),
      );
      expect((await api.admin('GET', '/admin/status')).json().events.byStatus).toEqual(byStatus);
      expect((await api.admin('GET', '/admin/status?source=migrationsource3')).json().events.total).toBe(
        (await db.query<{ n: number }>('select count(*)::int as n from mailjet_events where source_id = 3'))[0].n,
      );
    } finally {
      await api?.close();
      await db.close();
    }
  });

  it('stretches the first partition past an event that a clock ahead put in a later month', async () => {
    const db = await databaseBefore('clockahead');
    try {
      await db.query(`insert into mailjet_events (payload, event_type, received_at) values ('{"n":1}', 'open', now()), ('{"n":2}', 'open', $1)`, [
        new Date(Date.now() + 5 * 31 * 86_400_000).toISOString(),
      ]);
      const rowsBefore = await rowsOf(db);
      await migrateDatabase(db.url);
      const first = monthName(7, 'mailjet_events_before_');
      expect(await db.query('select tableoid::regclass::text as partition, count(*)::int as n from mailjet_events group by 1')).toEqual([
        { partition: first, n: 2 },
      ]);
      // This month and the next three are within it: nothing else to make.
      expect((await db.query<{ name: string }>('select name from event_partitions()')).map((row) => row.name)).toEqual([first, 'mailjet_events_default']);
      expect(await rowsOf(db)).toEqual(rowsBefore);
    } finally {
      await db.close();
    }
  });
});
