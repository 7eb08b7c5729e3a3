import { randomBytes } from 'node:crypto';
import { MailjetCallbacks } from '../apps/api/src/mailjet-rest/mailjet-callbacks.service';
import { ProductProcess } from './faults/product-process';
import { TestDatabase } from './support/database';
import { FakeMessageSeed, MailjetFake } from './support/mailjet-fake';
import { PipelineHarness } from './support/pipeline-harness';
import { SegmentSink } from './support/segment-sink';
import { ADMIN_TOKEN, SECRETS_KEY, SEGMENT_WRITE_KEY, TEST_DATABASE_URL, TEST_REDIS_URL, WEBHOOK_PASSWORD, WEBHOOK_USER, testConfig } from './support/test-env';
import { waitFor } from './support/wait-for';
import { WorkerHarness } from './support/worker-harness';

const MAILJET_KEYS = { apiKey: 'mj-public-key', apiSecret: 'mj-secret-key-0123' };
// The window: an hour of messages, one a minute. Ids beyond 2^53.
const FROM = Date.UTC(2026, 10, 20, 10) / 1000;
const TO = FROM + 3600;
const FIRST_MESSAGE_ID = 1152921504606846976n;

interface Progress {
  status: string;
  messagesTotal: number | null;
  messagesScanned: number;
  eventsFound: number;
  eventsNew: number;
  eventsKnown: number;
  error?: string;
}

/** `count` messages of the window, each sent then opened; every fourth also clicked. One more arrived after the window. */
function messages(count: number): FakeMessageSeed[] {
  const seeds = Array.from({ length: count }, (_, i): FakeMessageSeed => {
    const arrived = FROM + i * Math.floor(3600 / count);
    return {
      ID: FIRST_MESSAGE_ID + BigInt(i),
      ArrivedAt: new Date(arrived * 1000),
      UUID: `guid-${i}`,
      ContactID: 1000 + i,
      ContactAlt: `user-${i}@example.com`,
      CampaignID: 7,
      history: [
        { EventAt: arrived + 1, EventType: 'sent', State: 'sent' },
        { EventAt: arrived + 100, EventType: 'opened', Useragent: 'Mozilla/5.0' },
        ...(i % 4 === 0 ? [{ EventAt: arrived + 200, EventType: 'clicked' as const }] : []),
      ],
      clicks: i % 4 === 0 ? [{ ClickedAt: new Date((arrived + 200) * 1000), Url: `https://example.com/${i}` }] : [],
    };
  });
  seeds.push({ ID: FIRST_MESSAGE_ID + 100_000n, ArrivedAt: new Date((TO + 10) * 1000), ContactAlt: 'late@example.com', history: [{ EventAt: TO + 11, EventType: 'sent' }] });
  return seeds;
}

/** What the webhook delivered of message `i`: its sent and opened events, the open at `openShift` seconds from the history's time. */
function webhookEventsOf(i: number, count: number, openShift = 0): string[] {
  const arrived = FROM + i * Math.floor(3600 / count);
  const base = `"MessageID":${FIRST_MESSAGE_ID + BigInt(i)},"Message_GUID":"guid-${i}","email":"user-${i}@example.com","mj_campaign_id":7,"mj_contact_id":${1000 + i}`;
  return [
    `{"event":"sent","time":${arrived + 1},${base},"smtp_reply":"250 OK"}`,
    `{"event":"open","time":${arrived + 100 + openShift},${base},"ip":"127.0.0.1","geo":"FR","agent":"Mozilla/5.0"}`,
  ];
}

/** (MessageID, Segment event) of every call a sink accepted. */
const keysOf = (sink: SegmentSink) => sink.accepted.map((call) => `${call.properties.email_id} ${call.event}`);

describe('backfill from Mailjet (api + worker + PostgreSQL + Redis + local Mailjet fake + local sink)', () => {
  const db = new TestDatabase();
  const mailjet = new MailjetFake(MAILJET_KEYS);
  let pipeline: PipelineHarness;

  const startBackfill = async () => {
    const response = await pipeline.api.admin('POST', '/admin/sources/default/backfills', {
      from: new Date(FROM * 1000).toISOString(),
      to: new Date(TO * 1000).toISOString(),
    });
    expect(response.statusCode).toBe(202);
    return response.json().id as string;
  };
  const finished = (id: string, timeoutMs = 30_000) =>
    waitFor(
      `backfill ${id} to finish`,
      async () => {
        const progress = (await pipeline.api.admin('GET', `/admin/backfills/${id}`)).json() as Progress;
        return progress.status === 'running' ? undefined : progress;
      },
      { timeoutMs },
    );

  beforeAll(async () => {
    await mailjet.start();
    pipeline = await PipelineHarness.start(db, {
      MAILJET_API_KEY: MAILJET_KEYS.apiKey,
      MAILJET_API_SECRET: MAILJET_KEYS.apiSecret,
      MAILJET_API_URL: mailjet.url,
    });
  });
  beforeEach(async () => {
    await pipeline.reset(db);
    mailjet.reset();
  });
  afterAll(async () => {
    await pipeline.close();
    await mailjet.stop();
    await db.close();
  });

  it('forwards only what the webhook missed, once, counting both; a second run of the window forwards nothing', async () => {
    const count = 20;
    mailjet.addMessages(messages(count));
    // The webhook delivered the even messages' sent and opened events; message 2's open 1 s off the history's time.
    const delivered = Array.from({ length: count / 2 }, (_, k) => webhookEventsOf(2 * k, count, 2 * k === 2 ? 1 : 0)).flat();
    expect((await pipeline.api.postWebhook(`[${delivered.join(',')}]`)).json()).toMatchObject({ accepted: 20 });
    await db.settled(20);
    expect(pipeline.sink.accepted).toHaveLength(20);

    const progress = await finished(await startBackfill());
    // 20 messages x (sent + opened) + 5 clicks; known: the 20 the webhook delivered.
    expect(progress).toMatchObject({ status: 'done', messagesTotal: 20, messagesScanned: 20, eventsFound: 45, eventsNew: 25, eventsKnown: 20 });
    const events = await db.settled(45);
    expect(events.every((event) => event.status === 'forwarded')).toBe(true);
    const keys = keysOf(pipeline.sink);
    expect(keys).toHaveLength(45);
    expect(new Set(keys).size).toBe(45);
    expect(keys).toContain(`${FIRST_MESSAGE_ID + 4n} Email Link Clicked`);
    const [clicked] = await db.query<{ payload: string; origin: string }>(
      `select payload::text, origin::text from mailjet_events where message_id = $1 and event_type = 'click'`,
      [(FIRST_MESSAGE_ID + 4n).toString()],
    );
    expect(clicked.origin).toBe('backfill');
    expect(JSON.parse(clicked.payload).url).toBe('https://example.com/4');
    expect(mailjet.requestsTo('message').every((request) => request.query.Limit === '1000' || request.query.Limit === '1')).toBe(true);

    const again = await finished(await startBackfill());
    expect(again).toMatchObject({ status: 'done', eventsFound: 45, eventsNew: 0, eventsKnown: 45 });
    expect(await db.count()).toBe(45);
    expect(pipeline.sink.accepted).toHaveLength(45);
  });

  it('marks a webhook event that arrives after the backfill stored it, a second apart, as its duplicate', async () => {
    mailjet.addMessages(messages(4));
    expect(await finished(await startBackfill())).toMatchObject({ status: 'done', eventsNew: 9, eventsKnown: 0 });
    await db.settled(9);
    // Mailjet's webhook for message 1's open comes late, its time a second off the history's.
    const [, open] = webhookEventsOf(1, 4, 1);
    expect((await pipeline.api.postWebhook(open)).json()).toMatchObject({ accepted: 1 });
    const events = await db.settled(10);
    expect(events.filter((event) => event.status === 'duplicate')).toHaveLength(1);
    expect(pipeline.sink.accepted).toHaveLength(9);
    expect(new Set(keysOf(pipeline.sink)).size).toBe(9);
  });

  it('forwards a second open a second after a delivered one: the backfill found it, it is not the first one\'s duplicate', async () => {
    const [seed] = messages(1);
    const arrived = FROM;
    // Two opens a second apart (an image proxy, then the reader): the webhook delivered the first only.
    seed.history = [...seed.history!, { EventAt: arrived + 101, EventType: 'opened', Useragent: 'Mozilla/5.0' }];
    mailjet.addMessages([seed]);
    expect((await pipeline.api.postWebhook(`[${webhookEventsOf(0, 1).join(',')}]`)).json()).toMatchObject({ accepted: 2 });
    await db.settled(2);

    expect(await finished(await startBackfill())).toMatchObject({ status: 'done', eventsFound: 4, eventsNew: 2, eventsKnown: 2 });
    const events = await db.settled(4);
    expect(events.map((event) => event.status)).toEqual(['forwarded', 'forwarded', 'forwarded', 'forwarded']);
    expect(keysOf(pipeline.sink).filter((key) => key.endsWith('Email Opened'))).toHaveLength(2);

    // The webhook of the second open, late and a second off: the backfilled one's duplicate, not sent again.
    const late = webhookEventsOf(0, 1, 2)[1];
    expect((await pipeline.api.postWebhook(late)).json()).toMatchObject({ accepted: 1 });
    const after = await db.settled(5);
    const duplicate = after.find((event) => event.status === 'duplicate');
    expect(duplicate).toBeDefined();
    expect(pipeline.sink.accepted).toHaveLength(4);
  });

  it('refuses a second backfill of an overlapping window while one runs, and cancelling a finished one', async () => {
    mailjet.addMessages(messages(300));
    mailjet.latencyMs = 5;
    const first = await startBackfill();
    const overlapping = await pipeline.api.admin('POST', '/admin/sources/default/backfills', {
      from: new Date((FROM + 600) * 1000).toISOString(),
      to: new Date(TO * 1000).toISOString(),
    });
    expect(overlapping.statusCode).toBe(409);
    expect(overlapping.json().message).toContain('overlaps this window');
    mailjet.latencyMs = 0;
    await finished(first, 60_000);
    const late = await pipeline.api.admin('DELETE', `/admin/backfills/${first}`);
    expect(late.statusCode).toBe(409);
    expect(late.json().message).toContain('is done already');
  });

  it('leaves out the events of a message without a recipient address: nothing stored, nothing counted, at every run', async () => {
    mailjet.addMessages([{ ID: FIRST_MESSAGE_ID, ArrivedAt: new Date((FROM + 5) * 1000), ContactAlt: '', history: [{ EventAt: FROM + 6, EventType: 'sent' }] }]);
    for (let run = 0; run < 2; run++) {
      expect(await finished(await startBackfill())).toMatchObject({ status: 'done', messagesScanned: 1, eventsFound: 0, eventsNew: 0 });
    }
    expect(await db.count()).toBe(0);
  });

  it('reports a callback check without PUBLIC_URL as an error of the check, and the api stays up', async () => {
    await pipeline.api.app.get(MailjetCallbacks).checkAll();
    const status = (await pipeline.api.admin('GET', '/admin/status')).json();
    expect(status.mailjet.callbacks).toEqual([expect.objectContaining({ source: 'default', error: expect.stringContaining('PUBLIC_URL is not set') })]);
  });

  it('slows down on 429 and loses nothing', async () => {
    mailjet.addMessages(messages(8));
    mailjet.answerNext(3, 429, { 'Retry-After': '1' });
    const progress = await finished(await startBackfill());
    expect(progress).toMatchObject({ status: 'done', eventsFound: 18, eventsNew: 18, eventsKnown: 0 });
    expect(mailjet.requests.filter((request) => request.status === 429)).toHaveLength(3);
    await db.settled(18);
    expect(new Set(keysOf(pipeline.sink)).size).toBe(18);
  });

  it('cancels: DELETE stops it, what it stored stays', async () => {
    mailjet.addMessages(messages(300));
    mailjet.latencyMs = 5;
    const id = await startBackfill();
    await waitFor('the backfill to store its first step', async () => (await pipeline.api.admin('GET', `/admin/backfills/${id}`)).json().messagesScanned > 0);
    const cancelled = await pipeline.api.admin('DELETE', `/admin/backfills/${id}`);
    expect(cancelled.json().status).toBe('cancelled');
    const progress = await finished(id);
    expect(progress.status).toBe('cancelled');
    expect(progress.messagesScanned).toBeLessThan(300);
    await db.settled(progress.eventsNew);
  });

  it('refuses to delete a source while a backfill of it runs (its next step would store more), and deletes it once cancelled', async () => {
    const created = await pipeline.api.admin('POST', '/admin/sources', {
      name: 'backfilled', destination: { preset: 'custom', host: pipeline.sink.url, writeKey: SEGMENT_WRITE_KEY }, mailjet: MAILJET_KEYS,
    });
    const slug = created.json().slug as string;
    mailjet.addMessages(messages(300));
    mailjet.latencyMs = 5;
    const started = await pipeline.api.admin('POST', `/admin/sources/${slug}/backfills`, {
      from: new Date(FROM * 1000).toISOString(), to: new Date(TO * 1000).toISOString(),
    });
    const id = started.json().id as string;
    await waitFor('the backfill to store its first step', async () => (await pipeline.api.admin('GET', `/admin/backfills/${id}`)).json().messagesScanned > 0);
    const refused = await pipeline.api.admin('DELETE', `/admin/sources/${slug}`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().message).toContain('a backfill running');

    await pipeline.api.admin('DELETE', `/admin/backfills/${id}`);
    const progress = await finished(id);
    await db.settled(progress.eventsNew);
    expect((await pipeline.api.admin('DELETE', `/admin/sources/${slug}`)).statusCode).toBeLessThan(300);
  });

  it('refuses a window that is not one, and a source without Mailjet keys', async () => {
    const backwards = await pipeline.api.admin('POST', '/admin/sources/default/backfills', { from: '2026-11-02T00:00:00Z', to: '2026-11-01T00:00:00Z' });
    expect(backwards.statusCode).toBe(400);
    expect(backwards.json().message).toContain('from must be before to');
    expect((await pipeline.api.admin('POST', '/admin/sources/default/backfills', { from: 'yesterday', to: '2026-11-01' })).statusCode).toBe(400);
    expect((await pipeline.api.admin('GET', '/admin/backfills/999999')).statusCode).toBe(404);
    const created = await pipeline.api.admin('POST', '/admin/sources', { name: 'no keys', destination: { preset: 'segment-us', writeKey: 'k' } });
    const refused = await pipeline.api.admin('POST', `/admin/sources/${created.json().slug}/backfills`, { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z' });
    expect(refused.statusCode).toBe(409);
  });
});

describe('a backfill with EVENT_RETENTION_DAYS set', () => {
  const db = new TestDatabase();
  const mailjet = new MailjetFake(MAILJET_KEYS);
  let pipeline: PipelineHarness;

  beforeAll(async () => {
    await mailjet.start();
    pipeline = await PipelineHarness.start(db, {
      MAILJET_API_KEY: MAILJET_KEYS.apiKey,
      MAILJET_API_SECRET: MAILJET_KEYS.apiSecret,
      MAILJET_API_URL: mailjet.url,
      EVENT_RETENTION_DAYS: '30',
    });
  });
  afterAll(async () => {
    await pipeline.close();
    await mailjet.stop();
    await db.close();
  });

  it('refuses a window reaching past the retention, whose events would be dropped with their dedupe keys and sent again', async () => {
    const day = 24 * 60 * 60 * 1000;
    const window = (fromDaysAgo: number) => ({ from: new Date(Date.now() - fromDaysAgo * day).toISOString(), to: new Date(Date.now() - day).toISOString() });
    const before = await db.query('select id from backfills');
    const refused = await pipeline.api.admin('POST', '/admin/sources/default/backfills', window(31));
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toContain('from must be within the last 30 days (EVENT_RETENTION_DAYS)');
    expect(await db.query('select id from backfills')).toHaveLength(before.length);
    expect((await pipeline.api.admin('POST', '/admin/sources/default/backfills', window(29))).statusCode).toBe(202);
  });
});

describe('a backfill whose api is killed (SIGKILL) resumes in the next api and finishes with the same result', () => {
  const db = new TestDatabase();
  const mailjet = new MailjetFake(MAILJET_KEYS);
  const sink = new SegmentSink(SEGMENT_WRITE_KEY);
  let worker: WorkerHarness;
  let api: ProductProcess | undefined;
  const queuePrefix = `test-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    await db.reset();
    await Promise.all([mailjet.start(), sink.start()]);
    worker = await WorkerHarness.start(testConfig({ SEGMENT_HOST: sink.url, QUEUE_PREFIX: queuePrefix }));
  });
  afterAll(async () => {
    await api?.stop('SIGKILL');
    await worker.close();
    await Promise.all([mailjet.stop(), sink.stop()]);
    await db.close();
  });

  it('resumes from the last recorded step: every event stored and forwarded once, the counts as without the kill', async () => {
    const count = 400;
    mailjet.addMessages(messages(count));
    // Slow enough that the kill lands mid-run (each step is 100 messages).
    mailjet.latencyMs = 10;
    const env = {
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: TEST_REDIS_URL,
      MAILJET_WEBHOOK_USER: WEBHOOK_USER,
      MAILJET_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD,
      ADMIN_TOKEN,
      SECRETS_KEY,
      QUEUE_PREFIX: queuePrefix,
      MAILJET_API_KEY: MAILJET_KEYS.apiKey,
      MAILJET_API_SECRET: MAILJET_KEYS.apiSecret,
      MAILJET_API_URL: mailjet.url,
      LOG_LEVEL: 'warn',
    };
    api = await ProductProcess.start('api', env);
    const admin = (method: string, path: string, body?: object) =>
      fetch(`${api!.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    const started = await admin('POST', '/admin/sources/default/backfills', { from: new Date(FROM * 1000).toISOString(), to: new Date(TO * 1000).toISOString() });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    const progress = async () => (await (await admin('GET', `/admin/backfills/${id}`)).json()) as Progress;

    await waitFor('the backfill to record a step', async () => (await progress()).messagesScanned >= 100);
    await api.stop('SIGKILL');
    const [atKill] = await db.query<{ scanned: number; status: string }>('select messages_scanned as scanned, status::text from backfills where id = $1', [id]);
    expect(atKill).toMatchObject({ status: 'running' });
    expect(atKill.scanned).toBeLessThan(count);

    await api.start();
    // The killed api's lease runs out (10 s), then the new one takes the backfill over.
    const done = await waitFor(
      'the backfill to finish in the new api',
      async () => {
        const now = await progress();
        return now.status === 'running' ? undefined : now;
      },
      { timeoutMs: 90_000 },
    );
    const expected = count * 2 + count / 4;
    expect(done).toMatchObject({ status: 'done', messagesScanned: count, eventsFound: expected, eventsNew: expected, eventsKnown: 0 });
    await db.settled(expected, 60_000);
    const keys = keysOf(sink);
    expect(new Set(keys).size).toBe(expected);
    expect(keys).toHaveLength(expected);
  }, 180_000);
});
