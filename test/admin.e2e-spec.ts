import { MAILJET_EVENT_TYPES } from '@app/mailjet';
import { MAILJET_SAMPLES, sampleWithMessageId } from './fixtures/mailjet-samples';
import type { ApiHarness } from './support/api-harness';
import { TestDatabase } from './support/database';
import { PipelineHarness } from './support/pipeline-harness';
import type { SegmentSink } from './support/segment-sink';
import { ADMIN_TOKEN } from './support/test-env';

describe('admin API (api + worker + PostgreSQL + Redis + a local Segment sink)', () => {
  const db = new TestDatabase();
  let pipeline: PipelineHarness;
  let api: ApiHarness;
  let sink: SegmentSink;

  beforeAll(async () => {
    pipeline = await PipelineHarness.start(db, { SEGMENT_BACKOFF_MS: '20', SEGMENT_MAX_ATTEMPTS: '2' });
    ({ api, sink } = pipeline);
  });
  beforeEach(() => pipeline.reset(db));
  afterAll(async () => {
    await pipeline.close();
    await db.close();
  });

  describe('authentication', () => {
    // Every row has three elements: a shorter one would make Jest pass `done` as the body.
    const routes: Array<['GET' | 'POST' | 'PUT' | 'DELETE', string, object | undefined]> = [
      ['GET', '/admin/status', undefined],
      ['GET', '/admin/events', undefined],
      ['GET', '/admin/events/1', undefined],
      ['POST', '/admin/events/1/requeue', undefined],
      ['POST', '/admin/requeue', { status: 'failed' }],
      ['PUT', '/admin/identities/a@b.c', { userId: 'u' }],
      ['DELETE', '/admin/identities/a@b.c', undefined],
      ['GET', '/admin/queues', undefined],
      ['GET', '/admin/queues/api/queues', undefined],
    ];

    it.each(routes)('%s %s answers 401 without the token, and with a wrong one', async (method, url, body) => {
      for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Basic ${Buffer.from('x:wrong').toString('base64')}` }]) {
        const response = await api.admin(method, url, body, headers);
        expect(response.statusCode).toBe(401);
        expect(response.headers['www-authenticate']).toBeDefined();
        expect(response.body).not.toContain(ADMIN_TOKEN);
      }
    });

    it('opens the queue dashboard to a browser with the token as the Basic password', async () => {
      const browser = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` };
      const page = await api.admin('GET', '/admin/queues', undefined, browser);
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toContain('text/html');
      const queues = await api.admin('GET', '/admin/queues/api/queues', undefined, browser);
      expect(queues.json().queues.map((q: { name: string }) => q.name)).toEqual(['mailjet-events']);
    });
  });

  it('serves the OpenAPI description of the callback and the admin API at /docs, behind the token', async () => {
    const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };
    expect((await api.get('/docs', bearer)).statusCode).toBe(200);
    const { paths } = (await api.get('/docs-json', bearer)).json();
    expect(Object.keys(paths)).toEqual(
      expect.arrayContaining([
        '/webhooks/mailjet',
        '/admin/status',
        '/admin/events',
        '/admin/events/{id}',
        '/admin/events/{id}/requeue',
        '/admin/requeue',
        '/admin/identities/{email}',
      ]),
    );
  });

  it('reports status counts that agree with the database after a mixed run', async () => {
    // forwarded: 7 types; duplicate: the open again; invalid: 2 junk (one an open); failed: one refused by Segment.
    for (const type of MAILJET_EVENT_TYPES) await api.postWebhook(MAILJET_SAMPLES[type]);
    await db.settled();
    await api.postWebhook(MAILJET_SAMPLES.open);
    await api.postWebhook(JSON.stringify([{ event: 'open', email: '' }, { event: 'nope', time: 1, email: 'a@b.c' }]));
    sink.answerNext(1, { status: 400, body: 'bad' });
    await api.postWebhook(sampleWithMessageId('click', '555'));
    await db.settled();

    const response = await api.admin('GET', '/admin/status');
    expect(response.statusCode).toBe(200);
    const status = response.json();
    const byStatus = Object.fromEntries(
      (await db.query<{ status: string; n: number }>('select status::text, count(*)::int as n from mailjet_events group by 1')).map(
        (row) => [row.status, row.n],
      ),
    );
    expect(byStatus).toEqual({ forwarded: 7, duplicate: 1, invalid: 2, failed: 1 });
    expect(status.events.byStatus).toEqual({ received: 0, queued: 0, ...byStatus });
    expect(status.events.total).toBe(11);
    expect(status.events.byType).toMatchObject({ open: 3, click: 2, sent: 1, '(unknown)': 1 });
    expect(status.queue).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 1, events: 0 });
    expect(status.oldestPendingAgeSeconds).toBeNull();
    expect(status.forwarded).toEqual({ lastMinute: 7, lastHour: 7 });
    expect(status.recentFailureReasons).toEqual([{ reason: 'Segment answered 400: bad', count: 1 }]);
  });

  describe('events', () => {
    it('shows one event: the payload as received, the Segment call, status, attempts and last error', async () => {
      await api.postWebhook(`[${sampleWithMessageId('click', '19421777835146491')}]`);
      await db.settled();
      const [{ id }] = await db.events();
      const response = await api.admin('GET', `/admin/events/${id}`);
      expect(response.statusCode).toBe(200);
      expect(response.body).toContain('"MessageID": 19421777835146491');
      const event = response.json();
      expect(event).toMatchObject({
        id,
        messageId: '19421777835146491',
        type: 'click',
        status: 'forwarded',
        attempts: 1,
        lastError: null,
        segmentCall: { event: 'Email Link Clicked', properties: { email_id: '19421777835146491', link_url: 'https://mailjet.com' } },
      });
      expect(event.segmentCall.messageId).toBe(event.segmentMessageId);
      expect(event.payload.url).toBe('https://mailjet.com');
    });

    it('answers 404 for an unknown event and 400 for a malformed id', async () => {
      expect((await api.admin('GET', '/admin/events/999999999')).statusCode).toBe(404);
      const bad = await api.admin('GET', '/admin/events/abc');
      expect(bad.statusCode).toBe(400);
      expect(JSON.stringify(bad.json().message)).toContain('id');
    });

    it('filters by type and by time range exactly', async () => {
      // Three opens and two clicks at known times.
      const at = (type: 'open' | 'click', id: number, time: number) =>
        sampleWithMessageId(type, String(id)).replace(/"time": \d+/, `"time": ${time}`);
      const base = Date.UTC(2026, 0, 1) / 1000;
      await api.postWebhook(`[${[at('open', 1, base), at('open', 2, base + 60), at('open', 3, base + 120), at('click', 4, base), at('click', 5, base + 60)].join(',')}]`);
      await db.settled();
      const list = async (query: string) => (await api.admin('GET', `/admin/events?${query}`)).json().items.map((e: { messageId: string }) => e.messageId);
      expect(await list('type=open')).toEqual(['3', '2', '1']);
      expect(await list('type=click')).toEqual(['5', '4']);
      const from = new Date((base + 60) * 1000).toISOString();
      const to = new Date((base + 120) * 1000).toISOString();
      expect(await list(`from=${from}&to=${to}`)).toEqual(['5', '2']);
      expect(await list(`type=open&from=${from}`)).toEqual(['3', '2']);
      expect(await list('messageId=4')).toEqual(['4']);
      expect(await list('email=api@mailjet.com&status=forwarded&limit=2')).toEqual(['5', '4']);
    });

    it('pages through every event exactly once while new events arrive', async () => {
      for (let i = 0; i < 5; i++) {
        await api.postWebhook(`[${Array.from({ length: 10 }, (_, j) => sampleWithMessageId('open', String(1000 + i * 10 + j))).join(',')}]`);
      }
      const newestFirst = (await db.events()).map((event) => event.id).reverse();
      const seen: string[] = [];
      let cursor: string | null = null;
      let posted = 0;
      do {
        const response = await api.admin('GET', `/admin/events?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
        expect(response.statusCode).toBe(200);
        const page: { items: Array<{ id: string }>; nextCursor: string | null } = response.json();
        seen.push(...page.items.map((item) => item.id));
        cursor = page.nextCursor;
        // New events arrive between pages.
        await api.postWebhook(sampleWithMessageId('click', String(5000 + posted++)));
      } while (cursor);
      expect(seen).toEqual(newestFirst);
      expect(new Set(seen).size).toBe(50);
    });

    it('rejects malformed filters with 400, naming the field', async () => {
      for (const [query, field] of [
        ['limit=0', 'limit'],
        ['limit=abc', 'limit'],
        ['status=bogus', 'status'],
        ['from=yesterday', 'from'],
        ['messageId=12a', 'messageId'],
        ['cursor=-1', 'cursor'],
        ['unknown=1', 'unknown'],
      ]) {
        const response = await api.admin('GET', `/admin/events?${query}`);
        expect(response.statusCode).toBe(400);
        expect(JSON.stringify(response.json().message)).toContain(field);
      }
    });
  });

  describe('requeue', () => {
    it('delivers every failed event once the sink is back, and a second requeue sends nothing', async () => {
      await sink.refuseConnections();
      await api.postWebhook(`[${[1, 2, 3, 4].map((i) => sampleWithMessageId('open', String(700 + i))).join(',')}]`);
      await db.settled();
      expect(await db.count("status = 'failed'")).toBe(4);
      const [{ last_error: reason }] = await db.query<{ last_error: string }>('select last_error from mailjet_events limit 1');
      expect(reason).toMatch(/^Segment unreachable/);

      await sink.start();
      const first = await api.admin('POST', '/admin/requeue', { status: 'failed' });
      expect(first.statusCode).toBe(200);
      expect(first.json()).toEqual({ requeued: 4 });
      await db.settled();
      expect(await db.count("status = 'forwarded'")).toBe(4);
      expect(sink.accepted).toHaveLength(4);

      const second = await api.admin('POST', '/admin/requeue', { status: 'failed' });
      expect(second.json()).toEqual({ requeued: 0 });
      await db.settled();
      expect(sink.accepted).toHaveLength(4);
    });

    it('requeues only the failed events of the given type and time range', async () => {
      await sink.refuseConnections();
      await api.postWebhook(`[${[sampleWithMessageId('open', '801'), sampleWithMessageId('click', '802')].join(',')}]`);
      await db.settled();
      await sink.start();
      const response = await api.admin('POST', '/admin/requeue', { status: 'failed', type: 'click', from: '2015-01-01T00:00:00Z' });
      expect(response.json()).toEqual({ requeued: 1 });
      await db.settled();
      expect(sink.accepted.map((call) => call.event)).toEqual(['Email Link Clicked']);
      expect(await db.count("status = 'failed' and event_type = 'open'")).toBe(1);
    });

    it('does not send again a failed event whose other delivery was forwarded meanwhile', async () => {
      sink.answerNext(1, { status: 400, body: 'bad' });
      await api.postWebhook(sampleWithMessageId('open', '901'));
      await db.settled();
      expect(await db.count("status = 'failed'")).toBe(1);
      // Mailjet delivers the same event again: a duplicate of the failed owner, not sent.
      await api.postWebhook(sampleWithMessageId('open', '901'));
      await db.settled();
      expect(await db.count("status = 'duplicate'")).toBe(1);
      expect((await api.admin('POST', '/admin/requeue', { status: 'failed' })).json()).toEqual({ requeued: 1 });
      await db.settled();
      expect(sink.accepted).toHaveLength(1);
      expect((await api.admin('POST', '/admin/requeue', { status: 'failed' })).json()).toEqual({ requeued: 0 });
    });

    it('requeues one event; 409 for forwarded and duplicate unless force replays a forwarded one', async () => {
      await api.postWebhook(sampleWithMessageId('open', '950'));
      await db.settled();
      await api.postWebhook(sampleWithMessageId('open', '950'));
      await db.settled();
      const [owner, duplicate] = await db.events();

      expect((await api.admin('POST', `/admin/events/${owner.id}/requeue`)).statusCode).toBe(409);
      expect((await api.admin('POST', `/admin/events/${duplicate.id}/requeue?force=true`)).statusCode).toBe(409);
      expect((await api.admin('POST', '/admin/events/999999999/requeue')).statusCode).toBe(404);
      expect(sink.accepted).toHaveLength(1);

      const replay = await api.admin('POST', `/admin/events/${owner.id}/requeue?force=true`);
      expect(replay.statusCode).toBe(200);
      await db.settled();
      expect(sink.accepted).toHaveLength(2);
      expect(sink.accepted[1].messageId).toBe(sink.accepted[0].messageId);
      expect(await db.count("status = 'forwarded'")).toBe(1);
    });

    it('rejects a malformed requeue body with 400, naming the field', async () => {
      for (const [body, field] of [
        [{}, 'status'],
        [{ status: 'forwarded' }, 'status'],
        [{ status: 'failed', from: 'soon' }, 'from'],
      ] as const) {
        const response = await api.admin('POST', '/admin/requeue', body);
        expect(response.statusCode).toBe(400);
        expect(JSON.stringify(response.json().message)).toContain(field);
      }
    });
  });

  describe('identities', () => {
    it('maps an email to a userId for events that arrive after the change, and unmaps it', async () => {
      const put = await api.admin('PUT', '/admin/identities/API@mailjet.com', { userId: 'user-1' });
      expect(put.statusCode).toBe(200);
      expect(put.json()).toEqual({ email: 'api@mailjet.com', userId: 'user-1' });
      await api.postWebhook(sampleWithMessageId('open', '990'));
      await db.settled();
      expect(sink.accepted[0].userId).toBe('user-1');

      expect((await api.admin('DELETE', '/admin/identities/api@mailjet.com')).statusCode).toBe(204);
      expect((await api.admin('DELETE', '/admin/identities/api@mailjet.com')).statusCode).toBe(404);
      await api.postWebhook(sampleWithMessageId('open', '991'));
      await db.settled();
      expect(sink.accepted[1]).toMatchObject({ anonymousId: 'api@mailjet.com' });
      expect(sink.accepted[1].userId).toBeUndefined();
    });

    it('rejects a malformed email or userId with 400, naming the field', async () => {
      const badEmail = await api.admin('PUT', '/admin/identities/not-an-email', { userId: 'u' });
      expect(badEmail.statusCode).toBe(400);
      expect(JSON.stringify(badEmail.json().message)).toContain('email');
      const noUserId = await api.admin('PUT', '/admin/identities/a@b.c', {});
      expect(noUserId.statusCode).toBe(400);
      expect(JSON.stringify(noUserId.json().message)).toContain('userId');
    });
  });
});
