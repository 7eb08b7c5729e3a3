import { GROUPED_SENT_SAMPLE, MAILJET_SAMPLES } from './fixtures/mailjet-samples';
import { ApiHarness } from './support/api-harness';
import { TestDatabase } from './support/database';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_DATABASE_URL, testConfig } from './support/test-env';
import { waitFor } from './support/wait-for';

// Outages are made with proxies owned by the test: the machine's PostgreSQL and Redis keep running.
describe('ingest while a backing service is unreachable', () => {
  const db = new TestDatabase();
  afterAll(() => db.close());

  describe('Redis', () => {
    const redisProxy = new TcpProxy({ host: '127.0.0.1', port: 6379 });
    let api: ApiHarness;

    beforeAll(async () => {
      await redisProxy.start();
      api = await ApiHarness.start(testConfig({ REDIS_URL: redisProxy.url('redis') }));
    });
    beforeEach(() => api.reset(db));
    afterAll(async () => {
      await api.close();
      await redisProxy.stop();
    });

    it('still answers 200 and stores the events; the recovery loop queues them once Redis is back', async () => {
      await redisProxy.cut();
      const response = await api.postWebhook(GROUPED_SENT_SAMPLE);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ received: 2, accepted: 2, invalid: 0 });
      expect(await db.count("status = 'received'")).toBe(2);
      expect((await api.get('/health/ready')).statusCode).toBe(503);

      await redisProxy.restore();
      // The deadline is the assertion: the recovery loop queues them within 30 s of Redis being back.
      await waitFor('the recovery loop to queue both events', async () => (await db.count("status = 'queued'")) === 2, {
        timeoutMs: 30000,
        intervalMs: 200,
      });
      // Queued once each, even though the recovery loop may have seen them more than once.
      expect(await api.queuedEventIds()).toEqual((await db.events()).map((event) => event.id));
      expect((await api.get('/health/ready')).statusCode).toBe(200);
    });
  });

  describe('Redis, away when the api starts', () => {
    const redisProxy = new TcpProxy({ host: '127.0.0.1', port: 6379 });
    let api: ApiHarness;

    beforeAll(async () => {
      await db.reset();
      await redisProxy.start();
      await redisProxy.cut();
      api = await ApiHarness.start(testConfig({ REDIS_URL: redisProxy.url('redis') }), { redisUp: false });
    });
    afterAll(async () => {
      await api.close();
      await redisProxy.stop();
    });

    it('answers callbacks 200 without holding them open, and queues them once Redis comes', async () => {
      const response = await api.postWebhook(GROUPED_SENT_SAMPLE);
      expect(response.json()).toEqual({ received: 2, accepted: 2, invalid: 0 });
      expect(await db.count("status = 'received'")).toBe(2);
      const [{ open }] = await db.query<{ open: number }>(
        "select count(*)::int as open from pg_stat_activity where state = 'idle in transaction' and datname = current_database()",
      );
      expect(open).toBe(0);
      // Bull Board and a requeue would wait for Redis as long as BullMQ does: they answer at once.
      expect((await api.admin('GET', '/admin/queues/api/queues')).statusCode).toBe(503);
      const [first] = await db.events();
      const requeue = await api.admin('POST', `/admin/events/${first.id}/requeue`);
      expect(requeue.statusCode).toBe(503);
      expect(requeue.json().message).toContain('the recovery loop queues them once Redis is back');

      await redisProxy.restore();
      await waitFor('the recovery loop to queue both events', async () => (await db.count("status = 'queued'")) === 2, {
        timeoutMs: 30000,
        intervalMs: 200,
      });
    });
  });

  describe('PostgreSQL', () => {
    const postgresProxy = new TcpProxy({ host: '127.0.0.1', port: 5432 });
    const databaseUrl = new URL(TEST_DATABASE_URL);
    let api: ApiHarness;

    beforeAll(async () => {
      await postgresProxy.start();
      databaseUrl.host = `127.0.0.1:${postgresProxy.port}`;
      api = await ApiHarness.start(testConfig({ DATABASE_URL: databaseUrl.toString() }));
    });
    beforeEach(() => api.reset(db));
    afterAll(async () => {
      await api.close();
      await postgresProxy.stop();
    });

    it('answers 503 and writes nothing; the same callback is stored once PostgreSQL is back', async () => {
      await postgresProxy.cut();
      const response = await api.postWebhook(`[${MAILJET_SAMPLES.open},${MAILJET_SAMPLES.click}]`);
      expect(response.statusCode).toBe(503);
      // Neither the connection string nor the address the driver failed to reach.
      expect(response.body).not.toContain(databaseUrl.toString());
      expect(response.body).not.toContain(databaseUrl.host);
      expect(await db.count()).toBe(0);
      const ready = await api.get('/health/ready');
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.postgres.status).toBe('down');

      await postgresProxy.restore();
      // Mailjet retries: the retry lands.
      const retry = await waitFor('a retried callback to be accepted', async () => {
        const answer = await api.postWebhook(`[${MAILJET_SAMPLES.open},${MAILJET_SAMPLES.click}]`);
        return answer.statusCode === 200 ? answer : undefined;
      });
      expect(retry.json()).toEqual({ received: 2, accepted: 2, invalid: 0 });
      expect(await db.count()).toBe(2);
    });
  });
});
