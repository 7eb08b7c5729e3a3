import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MAILJET_EVENT_TYPES, MailjetEventType } from '@app/mailjet';
import { GROUPED_SENT_SAMPLE, MAILJET_SAMPLES, SAMPLE_MESSAGE_IDS } from './fixtures/mailjet-samples';
import { ApiHarness } from './support/api-harness';
import { TestDatabase } from './support/database';
import { PipelineHarness } from './support/pipeline-harness';
import type { SinkBatch } from './support/segment-sink';
import { TcpProxy } from './support/tcp-proxy';
import { basicAuth, SEGMENT_WRITE_KEY, TEST_DATABASE_URL, testConfig } from './support/test-env';
import { waitFor } from './support/wait-for';

type TrackCall = SinkBatch['batch'][number];
type Row = Record<string, unknown>;

const COMMON_COLUMNS: Array<[string, string]> = [
  ['id', 'text'],
  ['source', 'text'],
  ['event', 'text'],
  ['event_text', 'text'],
  ['timestamp', 'timestamp with time zone'],
  ['received_at', 'timestamp with time zone'],
  ['forwarded_at', 'timestamp with time zone'],
  ['user_id', 'text'],
  ['anonymous_id', 'text'],
  ['context_traits_email', 'text'],
  ['context_ip', 'text'],
  ['context_user_agent', 'text'],
  ['context_location_country', 'text'],
  ['email_id', 'text'],
  ['message_guid', 'text'],
  ['campaign_id', 'text'],
  ['campaign_name', 'text'],
  ['contact_id', 'text'],
  ['custom_id', 'text'],
];

/** The views and their columns, in order, with their types: docs/SQL.md, the analysts' contract. */
const VIEW_COLUMNS: Record<string, Array<[string, string]>> = {
  tracks: COMMON_COLUMNS,
  email_delivered: [...COMMON_COLUMNS, ['smtp_reply', 'text']],
  email_opened: COMMON_COLUMNS,
  email_link_clicked: [...COMMON_COLUMNS, ['link_url', 'text']],
  email_unsubscribed: [...COMMON_COLUMNS, ['list_id', 'text']],
  email_bounced: [
    ...COMMON_COLUMNS,
    ['hard_bounce', 'boolean'],
    ['blocked', 'boolean'],
    ['error_related_to', 'text'],
    ['error', 'text'],
    ['comment', 'text'],
  ],
  email_marked_as_spam: [...COMMON_COLUMNS, ['spam_source', 'text']],
  email_blocked: [...COMMON_COLUMNS, ['error_related_to', 'text'], ['error', 'text']],
};

const VIEW_OF_TYPE: Record<MailjetEventType, string> = {
  sent: 'email_delivered',
  open: 'email_opened',
  click: 'email_link_clicked',
  bounce: 'email_bounced',
  blocked: 'email_blocked',
  spam: 'email_marked_as_spam',
  unsub: 'email_unsubscribed',
};

const VIEW_OF_SEGMENT_EVENT: Record<string, string> = {
  'Email Delivered': 'email_delivered',
  'Email Opened': 'email_opened',
  'Email Link Clicked': 'email_link_clicked',
  'Email Bounced': 'email_bounced',
  'Email Blocked': 'email_blocked',
  'Email Marked as Spam': 'email_marked_as_spam',
  'Email Unsubscribed': 'email_unsubscribed',
};

/** Property columns named otherwise than the Segment property they hold. */
const PROPERTY_OF_COLUMN: Record<string, string> = { spam_source: 'source' };

/** What PostgreSQL's text keeps of a string the worker sent: NULs dropped, lone surrogates as U+FFFD. */
function storable(text: string): string {
  return text.replaceAll('\u0000', '').replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** The row a view must show for a track call the worker sent (received_at and forwarded_at from the stored event). */
function expectedRowOf(call: TrackCall, view: string, stored: { received_at: Date; forwarded_at: Date }, source: string): Row {
  const properties = call.properties;
  const context = call.context as { traits: { email: string }; ip?: string; userAgent?: string; location?: { country: string } };
  const common: Row = {
    id: call.messageId,
    source,
    event: VIEW_OF_SEGMENT_EVENT[call.event],
    event_text: call.event,
    timestamp: new Date(call.timestamp as string),
    received_at: stored.received_at,
    forwarded_at: stored.forwarded_at,
    user_id: typeof call.userId === 'string' ? storable(call.userId) : null,
    anonymous_id: call.anonymousId ?? null,
    context_traits_email: context.traits.email,
    context_ip: context.ip ?? null,
    context_user_agent: context.userAgent === undefined ? null : storable(context.userAgent),
    context_location_country: context.location?.country ?? null,
  };
  const row: Row = {};
  for (const [column, type] of VIEW_COLUMNS[view]) {
    if (column in common) {
      row[column] = common[column];
      continue;
    }
    const value = properties[PROPERTY_OF_COLUMN[column] ?? column];
    if (type === 'boolean') row[column] = typeof value === 'boolean' ? value : null;
    else row[column] = value === undefined ? null : typeof value === 'string' ? storable(value) : JSON.stringify(value);
  }
  return row;
}

/**
 * A Mailjet event as JSON text: the MessageID as digits (beyond 2^53), `raw` fields as the JSON
 * literals given (1.0, 1e3: JSON.stringify would rewrite them), the others through JSON.stringify.
 */
function mailjetEvent(
  type: MailjetEventType,
  messageId: string,
  time: number,
  fields: Record<string, unknown> = {},
  raw: Record<string, string> = {},
): string {
  const merged: Record<string, unknown> = {
    Message_GUID: `guid-${messageId}`,
    email: 'api@mailjet.com',
    mj_campaign_id: 7,
    mj_contact_id: 11,
    customcampaign: '',
    CustomID: '',
    Payload: '',
    ...fields,
  };
  for (const key of Object.keys(raw)) delete merged[key];
  const members = [
    `"event":${JSON.stringify(type)}`,
    `"time":${time}`,
    `"MessageID":${messageId}`,
    ...Object.entries(merged).map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`),
    ...Object.entries(raw).map(([key, literal]) => `${JSON.stringify(key)}:${literal}`),
  ];
  return `{${members.join(',')}}`;
}

/** The SQL blocks of the README's "Analysts' SQL" section, exactly as an analyst would copy them. */
function readmeQueries(): string[] {
  const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((part) => part.startsWith("Analysts' SQL\n"));
  if (section === undefined) throw new Error("README.md has no \"## Analysts' SQL\" section");
  return [...section.matchAll(/^```sql\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
}

describe("analysts' SQL: the mailjet.* views (api + worker + PostgreSQL + Redis + a local Segment sink)", () => {
  const db = new TestDatabase();

  afterAll(() => db.close());

  /** Every view's row for each call the sink accepted equals what the worker sent; and no row beyond them. */
  async function expectViewsToShowWhatWasSent(sink: { accepted: TrackCall[] }, sourceOf: (call: TrackCall) => string = () => 'default') {
    const calls = sink.accepted;
    expect(calls.length).toBeGreaterThan(0);
    const stored = await db.query<{ segment_message_id: string; received_at: Date; forwarded_at: Date }>(
      `select segment_message_id, received_at, forwarded_at from mailjet_events where status = 'forwarded'`,
    );
    expect(await db.query(`select count(*)::int as n from mailjet.tracks`)).toEqual([{ n: calls.length }]);
    for (const call of calls) {
      const view = VIEW_OF_SEGMENT_EVENT[call.event];
      const times = stored.find((row) => row.segment_message_id === call.messageId);
      expect(times).toBeDefined();
      const expected = expectedRowOf(call, view, times!, sourceOf(call));
      expect(await db.query(`select * from mailjet.${view} where id = $1`, [call.messageId])).toEqual([expected]);
      const tracksRow = Object.fromEntries(COMMON_COLUMNS.map(([column]) => [column, expected[column]]));
      expect(await db.query(`select * from mailjet.tracks where id = $1`, [call.messageId])).toEqual([tracksRow]);
    }
  }

  describe('with the default USER_ID_PAYLOAD_KEY', () => {
    let pipeline: PipelineHarness;
    let api: ApiHarness;

    beforeAll(async () => {
      // Left by another configuration: the processes write theirs at start.
      await db.pool.query(`update analyst_view_settings set user_id_payload_key = 'stale-key'`);
      pipeline = await PipelineHarness.start(db);
      api = pipeline.api;
    });
    beforeEach(() => pipeline.reset(db));
    afterAll(() => pipeline.close());

    async function post(...bodies: string[]): Promise<void> {
      for (const body of bodies) expect((await api.postWebhook(body)).statusCode).toBe(200);
    }

    it('has the eight documented views, with their columns and types, and nothing else in schema mailjet', async () => {
      // The processes replaced the stale key with theirs at start.
      expect(await db.query(`select user_id_payload_key as key from analyst_view_settings`)).toEqual([{ key: 'userId' }]);
      const columns = await db.query<{ view: string; column: string; type: string }>(
        `select table_name as view, column_name as column, data_type as type from information_schema.columns
         where table_schema = 'mailjet' order by table_name, ordinal_position`,
      );
      const actual: Record<string, Array<[string, string]>> = {};
      for (const { view, column, type } of columns) (actual[view] ??= []).push([column, type]);
      expect(actual).toEqual(VIEW_COLUMNS);
      const relations = await db.query<{ name: string; kind: string }>(
        `select c.relname as name, c.relkind::text as kind from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'mailjet' order by 1`,
      );
      expect(relations).toEqual(Object.keys(VIEW_COLUMNS).sort().map((name) => ({ name, kind: 'v' })));
    });

    it("shows each of Mailjet's seven documented examples once, in tracks and in its own view, as the worker sent it", async () => {
      await post(...MAILJET_EVENT_TYPES.map((type) => MAILJET_SAMPLES[type]));
      const stored = await db.settled(7);
      expect(stored.map((row) => row.status)).toEqual(Array(7).fill('forwarded'));

      for (const [index, type] of MAILJET_EVENT_TYPES.entries()) {
        const sample = JSON.parse(MAILJET_SAMPLES[type]);
        const rows = await db.query<Row>(`select * from mailjet.${VIEW_OF_TYPE[type]}`);
        expect(rows).toHaveLength(1);
        const clientContext = ['open', 'click', 'unsub'].includes(type);
        expect(rows[0]).toMatchObject({
          id: stored[index].segment_message_id,
          source: 'default',
          event: VIEW_OF_TYPE[type],
          timestamp: new Date(sample.time * 1000),
          user_id: null,
          anonymous_id: sample.email,
          context_traits_email: sample.email,
          context_ip: clientContext ? sample.ip : null,
          context_user_agent: clientContext ? sample.agent : null,
          context_location_country: clientContext ? sample.geo : null,
          email_id: SAMPLE_MESSAGE_IDS[type],
          message_guid: sample.Message_GUID,
          campaign_id: String(sample.mj_campaign_id),
          campaign_name: null,
          contact_id: String(sample.mj_contact_id),
          custom_id: 'helloworld',
        });
        expect(rows[0].forwarded_at).toBeInstanceOf(Date);
      }
      expect(await db.query(`select smtp_reply from mailjet.email_delivered`)).toEqual([{ smtp_reply: JSON.parse(MAILJET_SAMPLES.sent).smtp_reply }]);
      expect(await db.query(`select link_url from mailjet.email_link_clicked`)).toEqual([{ link_url: 'https://mailjet.com' }]);
      expect(await db.query(`select list_id from mailjet.email_unsubscribed`)).toEqual([{ list_id: '1' }]);
      expect(await db.query(`select hard_bounce, blocked, error_related_to, error, comment from mailjet.email_bounced`)).toEqual([
        {
          hard_bounce: true,
          blocked: false,
          error_related_to: 'recipient',
          error: 'user unknown',
          comment: JSON.parse(MAILJET_SAMPLES.bounce).comment,
        },
      ]);
      expect(await db.query(`select spam_source from mailjet.email_marked_as_spam`)).toEqual([{ spam_source: 'JMRPP' }]);
      expect(await db.query(`select error_related_to, error from mailjet.email_blocked`)).toEqual([{ error_related_to: 'recipient', error: 'user unknown' }]);
      expect(await db.query(`select event, event_text from mailjet.tracks order by event collate "C"`)).toEqual(
        Object.entries(VIEW_OF_SEGMENT_EVENT)
          .map(([eventText, event]) => ({ event, event_text: eventText }))
          .sort((a, b) => (a.event < b.event ? -1 : 1)),
      );
      await expectViewsToShowWhatWasSent(pipeline.sink);
    });

    it('keeps MessageIDs beyond 2^53 digit for digit', async () => {
      await post(GROUPED_SENT_SAMPLE);
      await db.settled(2);
      const rows = await db.query<{ email_id: string }>(`select email_id from mailjet.email_delivered order by email_id`);
      expect(rows.map((row) => row.email_id)).toEqual(['19421777835146490', '19421777835146491']);
      // Through a double, the second would read as the first: the test can tell.
      expect(String(Number('19421777835146491'))).not.toBe('19421777835146491');
    });

    it('has no row for a duplicate or an invalid event; the id is the messageId the worker recorded', async () => {
      const now = Math.floor(Date.now() / 1000);
      const open = mailjetEvent('open', '9007199254740993', now);
      await Promise.all([post(open), post(open), post(`[${open}]`)]);
      await post(`{"event":"open","time":${now},"MessageID":0,"email":"junk@example.com"}`, `{"event":"opened","time":${now},"MessageID":1,"email":"a@b.c"}`);
      const stored = await db.settled(5);
      expect(stored.map((row) => row.status).sort()).toEqual(['duplicate', 'duplicate', 'forwarded', 'invalid', 'invalid']);
      const forwarded = stored.find((row) => row.status === 'forwarded')!;

      expect(await db.query(`select id, email_id from mailjet.tracks`)).toEqual([{ id: forwarded.segment_message_id, email_id: '9007199254740993' }]);
      expect(await db.query(`select id from mailjet.email_opened`)).toEqual([{ id: forwarded.segment_message_id }]);
      expect(pipeline.sink.accepted.map((call) => call.messageId)).toEqual([forwarded.segment_message_id]);
    });

    it('takes user_id from the Payload, else from an identity, else gives the email as anonymous_id', async () => {
      const now = Math.floor(Date.now() / 1000);
      expect((await api.admin('PUT', '/admin/identities/Mapped@Example.com', { userId: 'user-from-identity' })).statusCode).toBe(200);
      expect((await api.admin('PUT', '/admin/identities/both@example.com', { userId: 'identity-loses' })).statusCode).toBe(200);
      await post(
        mailjetEvent('open', '1000000000000000001', now, { email: 'payload@example.com', Payload: '{"userId":"user-from-payload"}' }),
        // The identity is found whatever the case of the address Mailjet sends.
        mailjetEvent('click', '1000000000000000002', now, { email: 'MAPPED@example.com', url: 'https://example.com/a' }),
        mailjetEvent('sent', '1000000000000000003', now, { email: 'both@example.com', Payload: ' {"campaign": 9, "userId": "payload-wins"}' }),
        mailjetEvent('bounce', '1000000000000000004', now, { email: 'nobody@example.com', hard_bounce: false, blocked: false }),
      );
      await db.settled(4);
      expect(await db.query(`select context_traits_email, user_id, anonymous_id from mailjet.tracks order by lower(context_traits_email)`)).toEqual([
        { context_traits_email: 'both@example.com', user_id: 'payload-wins', anonymous_id: null },
        { context_traits_email: 'MAPPED@example.com', user_id: 'user-from-identity', anonymous_id: null },
        { context_traits_email: 'nobody@example.com', user_id: null, anonymous_id: 'nobody@example.com' },
        { context_traits_email: 'payload@example.com', user_id: 'user-from-payload', anonymous_id: null },
      ]);
      await expectViewsToShowWhatWasSent(pipeline.sink);
    });

    it('reads every stored payload: \\u0000 and lone surrogates in strings, a Payload that is not JSON', async () => {
      const now = Math.floor(Date.now() / 1000);
      const withNul = mailjetEvent('open', '1000000000000000011', now, {
        customcampaign: 'spring\u0000sale',
        agent: 'Mozilla/5.0 \u0000(X11)',
        CustomID: 'half \ud800 a pair',
        // A NUL inside the Payload text: JSON.parse refuses it, so the worker sends no userId.
        Payload: '{"userId":"nul\u0000inside"}',
      });
      expect(withNul).toContain('spring\\u0000sale');
      await post(
        withNul,
        // Escaped inside the Payload's own JSON: JSON.parse reads it, and the userId has a NUL.
        mailjetEvent('click', '1000000000000000012', now, { url: 'https://example.com/\u0000', Payload: '{"userId":"escaped\\u0000nul"}' }),
        mailjetEvent('sent', '1000000000000000013', now, { Payload: '{not json' }),
        mailjetEvent('bounce', '1000000000000000014', now, { Payload: '{"userId": }', hard_bounce: true }),
        mailjetEvent('unsub', '1000000000000000015', now, { Payload: '["userId"]', mj_list_id: 3 }),
        mailjetEvent('spam', '1000000000000000016', now, { Payload: 'userId=42', source: 'JMRPP' }),
      );
      const stored = await db.settled(6);
      expect(stored.map((row) => row.status)).toEqual(Array(6).fill('forwarded'));
      // What the views get around: json's ->> refuses the whole event.
      await expect(db.query(`select payload->>'email' from mailjet_events where message_id = '1000000000000000011'`)).rejects.toThrow(
        /unsupported Unicode escape sequence/,
      );

      expect(await db.query(`select campaign_name, context_user_agent, custom_id, user_id, anonymous_id from mailjet.email_opened`)).toEqual([
        { campaign_name: 'springsale', context_user_agent: 'Mozilla/5.0 (X11)', custom_id: 'half \ufffd a pair', user_id: null, anonymous_id: 'api@mailjet.com' },
      ]);
      expect(await db.query(`select link_url, user_id from mailjet.email_link_clicked`)).toEqual([{ link_url: 'https://example.com/', user_id: 'escapednul' }]);
      expect(await db.query(`select count(*)::int as n from mailjet.tracks where user_id is null and anonymous_id = 'api@mailjet.com'`)).toEqual([{ n: 5 }]);
      for (const view of Object.keys(VIEW_COLUMNS)) await db.query(`select * from mailjet.${view}`);
      await expectViewsToShowWhatWasSent(pipeline.sink);
    });

    it('writes numbers as the worker does: integers digit for digit, the others as JavaScript writes them', async () => {
      const now = Math.floor(Date.now() / 1000);
      await post(
        mailjetEvent('open', '1000000000000000021', now, { Payload: '{"userId": 42}' }, { mj_campaign_id: '1.0', mj_contact_id: '1e3', CustomID: '-0' }),
        mailjetEvent('open', '1000000000000000022', now, { Payload: '{"userId": 12345678901234567}' }, { mj_campaign_id: '12345678901234567', mj_contact_id: '0.1' }),
        mailjetEvent('open', '1000000000000000023', now, { Payload: '{"userId": 1e21}' }, { mj_campaign_id: '1e21', mj_contact_id: '2.5e-7' }),
        mailjetEvent('open', '1000000000000000024', now, { Payload: { userId: 'an object' } }, { mj_campaign_id: 'true', customcampaign: 'null' }),
        mailjetEvent('open', '1000000000000000025', now, {}, { Payload: '{"userId": 19421777835146491}' }),
      );
      await db.settled(5);
      expect(await db.query(`select email_id, campaign_id, contact_id, custom_id, campaign_name, user_id from mailjet.email_opened order by email_id`)).toEqual([
        { email_id: '1000000000000000021', campaign_id: '1', contact_id: '1000', custom_id: '0', campaign_name: null, user_id: '42' },
        { email_id: '1000000000000000022', campaign_id: '12345678901234567', contact_id: '0.1', custom_id: null, campaign_name: null, user_id: '12345678901234568' },
        { email_id: '1000000000000000023', campaign_id: '1e+21', contact_id: '2.5e-7', custom_id: null, campaign_name: null, user_id: '1e+21' },
        { email_id: '1000000000000000024', campaign_id: 'true', contact_id: '11', custom_id: null, campaign_name: null, user_id: 'an object' },
        { email_id: '1000000000000000025', campaign_id: '7', contact_id: '11', custom_id: null, campaign_name: null, user_id: '19421777835146491' },
      ]);
      await expectViewsToShowWhatWasSent(pipeline.sink);

      // A parallel plan, as PostgreSQL picks on a large table: no helper may open an exception
      // block there ("cannot start subtransactions during a parallel operation").
      const client = await db.pool.connect();
      try {
        await client.query(
          `select set_config(name, 'on', false) from pg_settings where name in ('force_parallel_mode', 'debug_parallel_query')`,
        );
        for (const setting of ['parallel_setup_cost', 'parallel_tuple_cost', 'min_parallel_table_scan_size']) await client.query(`set ${setting} = 0`);
        const query = `select email_id, campaign_id, contact_id, user_id from mailjet.email_opened order by email_id`;
        const plan = (await client.query<{ 'QUERY PLAN': string }>(`explain (costs off) ${query}`)).rows.map((row) => row['QUERY PLAN']).join('\n');
        expect(plan).toContain('Gather');
        expect((await client.query(query)).rows.map((row) => row.user_id)).toEqual(['42', '12345678901234568', '1e+21', 'an object', '19421777835146491']);
      } finally {
        await client.query('reset all');
        client.release();
      }
    });

    it("carries each event's source", async () => {
      const created = await api.admin('POST', '/admin/sources', {
        name: 'EU marketing',
        destination: { preset: 'custom', host: pipeline.sink.url, writeKey: SEGMENT_WRITE_KEY },
      });
      expect(created.statusCode).toBe(201);
      const { slug, webhook } = created.json();
      const now = Math.floor(Date.now() / 1000);
      await post(mailjetEvent('open', '1000000000000000031', now));
      const other = mailjetEvent('open', '1000000000000000032', now);
      expect((await api.postWebhook(other, { url: `/webhooks/mailjet/${slug}`, authorization: basicAuth(webhook.user, webhook.password) })).statusCode).toBe(200);
      await db.settled(2);
      expect(await db.query(`select email_id, source from mailjet.email_opened order by email_id`)).toEqual([
        { email_id: '1000000000000000031', source: 'default' },
        { email_id: '1000000000000000032', source: slug },
      ]);
      await expectViewsToShowWhatWasSent(pipeline.sink, (call) => (call.properties.email_id === '1000000000000000032' ? slug : 'default'));
    });

    it('counts the last day from the event_time index, without reading any JSON', async () => {
      const client = await db.pool.connect();
      try {
        // On a few rows the planner would rather read the table: say that it may not, to see that it can use the index.
        await client.query('set enable_seqscan = off');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(
          `explain (verbose, costs off) select count(*) from mailjet.email_opened where "timestamp" > now() - interval '1 day'`,
        );
        const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
        expect(plan).toMatch(/Index Cond: \(\w+\.event_time > \(now\(\) - '1 day'::interval\)\)/);
        expect(plan).toMatch(/Index (Only )?Scan using \w*event_time\w*|Bitmap Index Scan on \w*event_time\w*/);
        // No call that reads the payload or the identities, and no join that only feeds columns not selected.
        expect(plan).not.toMatch(/analyst_event_fields\(|json_populate_record|analyst_payload_user_id\(|sha256\(|identities|sources/);
      } finally {
        await client.query('reset enable_seqscan');
        client.release();
      }
    });

    it("runs the README's three queries as written", async () => {
      const queries = readmeQueries();
      expect(queries).toHaveLength(3);
      const [rates, bounceReasons, topLinks] = queries;
      // Noon today in the database's time zone: every event of the test falls on the same day.
      const [{ noon }] = await db.query<{ noon: number }>(`select extract(epoch from current_date::timestamptz + interval '12 hours')::int as noon`);
      const reader = (n: number) => ({ email: `reader${n}@example.com` });
      const spring = (n: number) => ({ ...reader(n), mj_campaign_id: 42, customcampaign: 'Spring sale' });
      const id = (n: number) => String(2_000_000_000_000_000_000n + BigInt(n));
      await post(
        `[${[1, 2, 3, 4].map((n) => mailjetEvent('sent', id(n), noon, spring(n))).join(',')}]`,
        mailjetEvent('sent', id(5), noon, { ...reader(5), mj_campaign_id: 43, customcampaign: 'Autumn' }),
        `[${[
          mailjetEvent('open', id(1), noon + 10, spring(1)),
          mailjetEvent('open', id(1), noon + 20, spring(1)),
          mailjetEvent('open', id(2), noon + 30, spring(2)),
          mailjetEvent('open', id(3), noon + 40, spring(3)),
          mailjetEvent('click', id(1), noon + 50, { ...spring(1), url: 'https://example.com/a' }),
          mailjetEvent('click', id(1), noon + 60, { ...spring(1), url: 'https://example.com/a' }),
          mailjetEvent('click', id(2), noon + 70, { ...spring(2), url: 'https://example.com/a' }),
          mailjetEvent('click', id(1), noon + 80, { ...spring(1), url: 'https://example.com/b' }),
        ].join(',')}]`,
        mailjetEvent('bounce', id(6), noon, { ...reader(6), hard_bounce: true, error_related_to: 'recipient', error: 'user unknown' }),
        mailjetEvent('bounce', id(7), noon, { ...reader(7), hard_bounce: true, error_related_to: 'recipient', error: 'user unknown' }),
        mailjetEvent('bounce', id(8), noon, { ...reader(8), hard_bounce: false, error_related_to: 'recipient', error: 'mailbox full' }),
        // Ten days ago: not last week's.
        mailjetEvent('bounce', id(9), noon - 10 * 86400, { ...reader(9), hard_bounce: false, error_related_to: 'domain', error: 'no mail host' }),
      );
      await db.settled(17);
      const [{ day }] = await db.query<{ day: Date }>(`select current_date as day`);

      expect(await db.query(rates)).toEqual([
        { day, campaign_id: '42', campaign_name: 'Spring sale', delivered: '4', open_rate_pct: '75.0', click_rate_pct: '50.0' },
        { day, campaign_id: '43', campaign_name: 'Autumn', delivered: '1', open_rate_pct: '0.0', click_rate_pct: '0.0' },
      ]);
      expect(await db.query(bounceReasons)).toEqual([
        { bounce: 'hard', error_related_to: 'recipient', error: 'user unknown', bounces: '2', recipients: '2' },
        { bounce: 'soft', error_related_to: 'recipient', error: 'mailbox full', bounces: '1', recipients: '1' },
      ]);
      expect(await db.query(topLinks)).toEqual([
        { link_url: 'https://example.com/a', clicks: '3', recipients: '2' },
        { link_url: 'https://example.com/b', clicks: '1', recipients: '1' },
      ]);
    });

    it('writes numbers as JSON.parse and String() do (the helper behind the number columns)', async () => {
      const literals = ['0', '-0', '0.0', '-0.0e-3', '1.0', '1e3', '2.5E+3', '0.1', '0.30000000000000004', '1e-7', '1e-6', '-1.1e-6', '1.2e-5', '100',
        '123.456', '-1.5', '1e20', '1e21', '999999999999999999999.5', '12345678901234567', '9007199254740993', '123456789012345678901234',
        // The largest double, the first value that rounds to Infinity, the smallest and half of it.
        '1.7976931348623157e308', '1.7976931348623158e308', '1.7976931348623159e308', '5e-324', '2.4703282292062327e-324', '2.4703282292062328e-324',
        '1e400', '-1e400', '1e-400', '1e999999999999999', '0e999999999999999', `0.${'0'.repeat(1000)}1e1001`, `1.${'0'.repeat(850)}1`,
        // Halfway between 1 and the next double: even rounds down; a digit beyond 800 tips it up.
        '1.00000000000000011102230246251565404236316680908203125', `1.00000000000000011102230246251565404236316680908203125${'0'.repeat(800)}1`];
      const rows = await db.query<{ literal: string; text: string }>(
        `select literal, analyst_js_number(literal) as text from unnest($1::text[]) literal`,
        [literals],
      );
      expect(rows.map((row) => [row.literal, row.text])).toEqual(literals.map((literal) => [literal, String(JSON.parse(literal))]));
    });

    it('tells JSON from text as JSON.parse does (the helper behind user_id), and only accepts what PostgreSQL reads', async () => {
      const texts = ['{}', '[]', '{"a":1}', '{"a":[1,2,{"b":null}],"c":"x"}', ' {"a":1} \r\n', '{"a":1,}', '{"a":1 "b":2}', '{"a"}', '{a:1}',
        "{'a':1}", '[1 2]', '[1,]', '[,1]', '[1-2]', '{"a":01}', '{"a":-}', '{"a":1.}', '{"a":.5}', '{"a":1e}', '{"a":-0}', '{"a":truefalse}',
        '{"a":"\\u00zz"}', '{"a":"\\x"}', '{"a":"\\ud800"}', '{"a":"\t"}', '{"a":"\u0001"}', '{"a":"\\""}', '{"a":"\\"}', '{"a":"}"}',
        '[[[[[]]]]]', '[[[[[]]]]', '{"a":1}{"b":2}', '{"a":1}\u00a0', '\f{"a":1}', '{"":""}', '{"a":"é😀"}', '{"a":1,"a":2}', '{:1}',
        '{"a"::1}', '[1,,2]', '[', '}'];
      const rows = await db.query<{ text: string; json: boolean }>(`select text, analyst_is_json_text(text) as json from unnest($1::text[]) text`, [texts]);
      const parses = (text: string) => {
        try {
          JSON.parse(text);
          return true;
        } catch {
          return false;
        }
      };
      expect(rows.map((row) => [row.text, row.json])).toEqual(texts.map((text) => [text, parses(text)]));
      for (const text of texts.filter(parses)) await db.query(`select $1::json`, [text]);
    });
  });

  describe('with USER_ID_PAYLOAD_KEY=accountRef', () => {
    let pipeline: PipelineHarness;

    beforeAll(async () => {
      pipeline = await PipelineHarness.start(db, { USER_ID_PAYLOAD_KEY: 'accountRef' });
    });
    afterAll(() => pipeline.close());

    it('reads user_id under the key the processes were started with, as the worker does', async () => {
      expect(await db.query(`select user_id_payload_key from analyst_view_settings`)).toEqual([{ user_id_payload_key: 'accountRef' }]);
      const now = Math.floor(Date.now() / 1000);
      for (const body of [
        mailjetEvent('open', '1000000000000000041', now, { email: 'a@example.com', Payload: '{"userId":"not-this","accountRef":"acc-7"}' }),
        mailjetEvent('open', '1000000000000000042', now, { email: 'b@example.com', Payload: '{"userId":"nor-this"}' }),
      ]) {
        expect((await pipeline.api.postWebhook(body)).statusCode).toBe(200);
      }
      await db.settled(2);
      expect(await db.query(`select user_id, anonymous_id from mailjet.email_opened order by context_traits_email`)).toEqual([
        { user_id: 'acc-7', anonymous_id: null },
        { user_id: null, anonymous_id: 'b@example.com' },
      ]);
      await expectViewsToShowWhatWasSent(pipeline.sink);
    });
  });

  describe('a process started while PostgreSQL is away', () => {
    const postgresProxy = new TcpProxy({ host: '127.0.0.1', port: 5432 });
    let api: ApiHarness | undefined;

    afterAll(async () => {
      await api?.close();
      await postgresProxy.stop();
    });

    it('writes its USER_ID_PAYLOAD_KEY once PostgreSQL is back', async () => {
      await db.pool.query(`update analyst_view_settings set user_id_payload_key = 'userId'`);
      await postgresProxy.start();
      await postgresProxy.cut();
      const databaseUrl = new URL(TEST_DATABASE_URL);
      databaseUrl.host = `127.0.0.1:${postgresProxy.port}`;
      api = await ApiHarness.start(testConfig({ DATABASE_URL: databaseUrl.toString(), USER_ID_PAYLOAD_KEY: 'afterOutage' }));
      expect(await db.query(`select user_id_payload_key as key from analyst_view_settings`)).toEqual([{ key: 'userId' }]);

      await postgresProxy.restore();
      await waitFor('the api to write its key', async () => {
        const [{ key }] = await db.query<{ key: string }>(`select user_id_payload_key as key from analyst_view_settings`);
        return key === 'afterOutage';
      });
    });
  });
});
