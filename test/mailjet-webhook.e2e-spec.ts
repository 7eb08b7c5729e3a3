import { MAILJET_EVENT_TYPES } from '@app/mailjet';
import { GROUPED_SENT_SAMPLE, MAILJET_SAMPLES, SAMPLE_MESSAGE_IDS } from './fixtures/mailjet-samples';
import { ApiHarness } from './support/api-harness';
import { TestDatabase } from './support/database';
import { ADMIN_TOKEN, basicAuth, testConfig, WEBHOOK_PASSWORD, WEBHOOK_USER } from './support/test-env';
import { waitFor } from './support/wait-for';

describe('POST /webhooks/mailjet (real PostgreSQL and Redis)', () => {
  const db = new TestDatabase();
  let api: ApiHarness;

  beforeAll(async () => {
    api = await ApiHarness.start(testConfig({ WEBHOOK_MAX_BODY_BYTES: String(64 * 1024) }));
  });
  beforeEach(() => api.reset(db));
  afterAll(async () => {
    await api.close();
    await db.close();
  });


  describe('authentication', () => {
    it.each([
      ['no credentials', null],
      ['a wrong password', basicAuth(WEBHOOK_USER, 'wrong')],
      ['a wrong user', basicAuth('other', WEBHOOK_PASSWORD)],
      ['the admin token', `Bearer ${ADMIN_TOKEN}`],
      ['a malformed header', 'Basic !!!'],
    ])('answers 401 with WWW-Authenticate for %s, and stores nothing', async (_, authorization) => {
      const response = await api.postWebhook(MAILJET_SAMPLES.open, { authorization });
      expect(response.statusCode).toBe(401);
      expect(response.headers['www-authenticate']).toMatch(/^Basic /);
      expect(response.body).not.toContain(WEBHOOK_PASSWORD);
      expect(await db.count()).toBe(0);
    });

    it('accepts credentials with ":" and non-ASCII characters in the password', async () => {
      expect(WEBHOOK_PASSWORD).toMatch(/:.*ö/);
      expect((await api.postWebhook(MAILJET_SAMPLES.open)).statusCode).toBe(200);
    });
  });

  describe('malformed bodies', () => {
    it.each([
      ['non-JSON', 'event=open&time=1'],
      ['truncated JSON', MAILJET_SAMPLES.open.slice(0, 40)],
      ['a JSON string', '"open"'],
      ['a JSON number', '42'],
      ['JSON null', 'null'],
      ['an array of numbers', '[1, 2]'],
      ['an array mixing objects and strings', `[${MAILJET_SAMPLES.open}, "x"]`],
      ['an empty array', '[]'],
    ])('answers 400 for %s and stores nothing', async (_, body) => {
      const response = await api.postWebhook(body);
      expect(response.statusCode).toBe(400);
      expect(response.json().message).toEqual(expect.any(String));
      expect(await db.count()).toBe(0);
    });

    it('answers 413 for a body over the limit, and stores nothing', async () => {
      const events = Array.from({ length: 200 }, () => MAILJET_SAMPLES.click);
      const body = `[${events.join(',')}]`;
      expect(body.length).toBeGreaterThan(64 * 1024);
      expect((await api.postWebhook(body)).statusCode).toBe(413);
      expect(await db.count()).toBe(0);
    });

    it('answers 415 for a body that is not sent as application/json', async () => {
      expect((await api.postWebhook(MAILJET_SAMPLES.open, { contentType: 'text/plain' })).statusCode).toBe(415);
    });
  });

  describe.each(MAILJET_EVENT_TYPES)('the documented %s example', (type) => {
    it('is stored exactly, marked queued and has a job', async () => {
      const response = await api.postWebhook(MAILJET_SAMPLES[type]);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ received: 1, accepted: 1, invalid: 0 });

      const [row] = await db.events();
      expect(row).toMatchObject({ message_id: SAMPLE_MESSAGE_IDS[type], event_type: type, payload: MAILJET_SAMPLES[type] });
      await waitFor('the event to be queued', async () => (await db.count("status = 'queued'")) === 1);
      expect(await api.queuedEventIds()).toEqual([row.id]);
    });
  });

  it('stores all seven types posted as one grouped body, queued together as one job', async () => {
    const body = `[${MAILJET_EVENT_TYPES.map((type) => MAILJET_SAMPLES[type]).join(',')}]`;
    const response = await api.postWebhook(body);
    expect(response.json()).toEqual({ received: 7, accepted: 7, invalid: 0 });
    await waitFor('all seven to be queued', async () => (await db.count("status = 'queued'")) === 7);
    const rows = await db.events();
    expect(rows.map((row) => row.event_type)).toEqual([...MAILJET_EVENT_TYPES]);
    expect(await api.queuedEventIds()).toEqual(rows.map((row) => row.id));
    expect(new Set(rows.map((row) => row.job_id)).size).toBe(1);
    expect(await api.queue.getJobCountByTypes('waiting', 'prioritized', 'delayed')).toBe(1);
    expect((await api.admin('GET', '/admin/status')).json().queue).toMatchObject({ waiting: 1, events: 7 });
  });

  it('stores each element of a grouped body as its own text, spacing and escapes included', async () => {
    const elements = [
      '{ "event" : "open", "time": 1433103519,\n  "MessageID": 19421777835146491, "email": "a@b.c", "Payload": "caf\\u00e9 \\"x\\"" }',
      '{"event":"click","time":1433103520,"MessageID":7,"email":"b@c.d","url":"https://x.y/?a=1&b=\\\\"}',
    ];
    const response = await api.postWebhook(`[ ${elements[0]} ,\n${elements[1]}]`);
    expect(response.json()).toEqual({ received: 2, accepted: 2, invalid: 0 });
    const rows = await db.events();
    expect(rows.map((row) => row.payload)).toEqual(elements);
  });

  it("stores Mailjet's grouped sample with MessageID 19421777835146491 digit for digit", async () => {
    const response = await api.postWebhook(GROUPED_SENT_SAMPLE);
    expect(response.json()).toEqual({ received: 2, accepted: 2, invalid: 0 });
    const rows = await db.query<{ message_id: string; raw_id: string }>(
      "select message_id, payload->>'MessageID' as raw_id from mailjet_events order by id",
    );
    expect(rows).toEqual([
      { message_id: '19421777835146490', raw_id: '19421777835146490' },
      { message_id: '19421777835146491', raw_id: '19421777835146491' },
    ]);
  });

  it('stores junk events as invalid with a reason, queues only the usable ones, and answers 200', async () => {
    const body = JSON.stringify([
      { event: 'open', time: 1433103519, MessageID: 5, email: '' },
      { event: 'open', time: 1433103519, MessageID: 0, Message_GUID: '', email: 'a@b.c' },
      { event: 'delivered', time: 1433103519, MessageID: 6, email: 'a@b.c' },
      { event: 'open', time: 1433103519, MessageID: 7, email: 'a@b.c', Payload: 'a\u0000b' },
    ]);
    const response = await api.postWebhook(body);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ received: 4, accepted: 1, invalid: 3 });
    const rows = await db.query<{ status: string; last_error: string | null }>(
      'select status::text, last_error from mailjet_events order by id',
    );
    expect(rows.map((row) => row.status.replace('received', 'queued'))).toEqual(['invalid', 'invalid', 'invalid', 'queued']);
    expect(rows.slice(0, 3).every((row) => (row.last_error ?? '').length > 0)).toBe(true);
    await waitFor('the usable event to be queued', async () => (await db.count("status = 'queued'")) === 1);
    expect(await api.queue.getJobCountByTypes('waiting')).toBe(1);
  });

  it('requeues a queued event only when its job is lost: a live job forwards its own events', async () => {
    expect((await api.postWebhook(MAILJET_SAMPLES.open)).statusCode).toBe(200);
    const [event] = await db.events();

    const live = await api.admin('POST', `/admin/events/${event.id}/requeue`);
    expect(live.statusCode).toBe(409);
    expect(live.json().message).toContain(`queued in job ${event.job_id}, which is still to run`);
    expect((await api.admin('POST', '/admin/requeue', { status: 'queued' })).json()).toEqual({ requeued: 0 });

    await api.queue.remove(event.job_id!);
    expect((await api.admin('POST', `/admin/events/${event.id}/requeue`)).statusCode).toBe(200);
    const [moved] = await db.events();
    expect(moved.job_id).toMatch(/^sweep-\d+-s1$/);
    expect(await api.queuedEventIds()).toEqual([event.id]);
  });

  it('answers /health/live and /health/ready with both services up', async () => {
    expect((await api.get('/health/live')).json()).toEqual({ status: 'ok' });
    const ready = await api.get('/health/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks).toEqual({ postgres: { status: 'up' }, redis: { status: 'up' }, sources: { status: 'up' } });
  });
});
