import { MAILJET_SAMPLES } from './fixtures/mailjet-samples';
import { ApiHarness } from './support/api-harness';
import { TestDatabase } from './support/database';
import { TcpProxy } from './support/tcp-proxy';
import { ADMIN_TOKEN, TEST_DATABASE_URL, testConfig } from './support/test-env';
import { waitFor } from './support/wait-for';

const bearer = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

// Input that reaches PostgreSQL malformed used to answer 500; outages of PostgreSQL or Redis too.
describe('admin API: bad input answers 400, an unreachable PostgreSQL or Redis 503', () => {
  const db = new TestDatabase();
  const postgresProxy = new TcpProxy({ host: '127.0.0.1', port: 5432 });
  const redisProxy = new TcpProxy({ host: '127.0.0.1', port: 6379 });
  let api: ApiHarness;

  const admin = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) =>
    api.app.getHttpAdapter().getInstance().inject({ method, url, headers: bearer, ...(payload ? { payload } : {}) });

  beforeAll(async () => {
    await postgresProxy.start();
    await redisProxy.start();
    const databaseUrl = new URL(TEST_DATABASE_URL);
    databaseUrl.host = `127.0.0.1:${postgresProxy.port}`;
    api = await ApiHarness.start(testConfig({ DATABASE_URL: databaseUrl.toString(), REDIS_URL: redisProxy.url('redis') }));
  });
  beforeEach(() => db.reset());
  afterAll(async () => {
    await api.close();
    await postgresProxy.stop();
    await redisProxy.stop();
    await db.close();
  });

  it.each([
    ['GET', '/admin/events?to=2023-W46', 'to', undefined],
    ['GET', '/admin/events?from=2023-318', 'from', undefined],
    ['GET', '/admin/events?from=20231114T100000Z', 'from', undefined],
    ['GET', '/admin/events?from=2023-11-14T10:00', 'from', undefined],
    ['GET', '/admin/events?cursor=9999999999999999999', 'cursor', undefined],
    ['GET', '/admin/events?cursor=9223372036854775808', 'cursor', undefined],
    ['GET', '/admin/events/9223372036854775808', 'id', undefined],
    ['POST', '/admin/events/9999999999999999999/requeue', 'id', undefined],
    ['GET', '/admin/events?email=a%00b@c.co', 'email', undefined],
    ['GET', '/admin/events?type=op%00en', 'type', undefined],
    ['PUT', '/admin/identities/a@b.co', 'userId', { userId: 'user\u0000-42' }],
    ['DELETE', '/admin/identities/a%00b@c.co', 'email', undefined],
    ['POST', '/admin/requeue', 'type', { status: 'failed', type: 'op\u0000en' }],
    ['POST', '/admin/requeue', 'to', { status: 'failed', to: '2023-W46' }],
  ] as const)('%s %s answers 400 naming %s', async (method, url, field, payload) => {
    const response = await admin(method, url, payload);
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${field} `))]));
  });

  it('accepts the edges: the largest bigint as cursor and id, a date-time with its offset', async () => {
    expect((await admin('GET', '/admin/events?cursor=9223372036854775807')).statusCode).toBe(200);
    expect((await admin('GET', '/admin/events/9223372036854775807')).statusCode).toBe(404);
    expect((await admin('GET', '/admin/events?from=2023-11-14T10:00%2B01:00&to=2023-11-15')).statusCode).toBe(200);
  });

  it('answers 503 while PostgreSQL is unreachable, naming it and nothing of its address', async () => {
    await postgresProxy.cut();
    try {
      for (const [method, url, payload] of [
        ['GET', '/admin/status', undefined],
        ['GET', '/admin/events', undefined],
        ['GET', '/admin/events/1', undefined],
        ['PUT', '/admin/identities/a@b.co', { userId: 'user-42' }],
      ] as const) {
        const response = await admin(method, url, payload);
        expect({ url, status: response.statusCode }).toEqual({ url, status: 503 });
        expect(response.json().message).toMatch(/^PostgreSQL is unavailable/);
        expect(response.body).not.toMatch(/127\.0\.0\.1|postgres(ql)?:\/\//);
      }
    } finally {
      await postgresProxy.restore();
    }
    await waitFor('PostgreSQL to answer the api again', async () => (await admin('GET', '/admin/events')).statusCode === 200);
  });

  it('answers 503 to a requeue while Redis is unreachable; the event stays for the recovery loop', async () => {
    expect((await api.postWebhook(MAILJET_SAMPLES.open)).statusCode).toBe(200);
    await db.query("update mailjet_events set status = 'failed'");
    const [{ id }] = await db.query<{ id: string }>('select id::text from mailjet_events');
    await redisProxy.cut();
    try {
      for (const url of [`/admin/events/${id}/requeue`, '/admin/requeue']) {
        const response = await admin('POST', url, url === '/admin/requeue' ? { status: 'failed' } : undefined);
        expect({ url, status: response.statusCode }).toEqual({ url, status: 503 });
        expect(response.json().message).toMatch(/^Redis is unavailable/);
        await db.query("update mailjet_events set status = 'failed'");
      }
    } finally {
      await redisProxy.restore();
    }
  });
});
