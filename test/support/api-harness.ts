import { getQueueToken } from '@nestjs/bullmq';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { AppConfig } from '@app/config';
import type { Cluster } from 'ioredis';
import { createBullmqConnection, decodeEventIds, MAILJET_EVENTS_QUEUE, MAX_EVENTS_PER_JOB, queueKeyPrefix } from '@app/queue';
import { createApiApp } from '../../apps/api/src/api.app';
import { TestDatabase } from './database';
import { basicAuth, TEST_REDIS_URL, testConfig } from './test-env';
import { waitFor } from './wait-for';

/** The api as production builds it, on real PostgreSQL and Redis, driven through Fastify's inject. */
export class ApiHarness {
  private constructor(
    readonly app: NestFastifyApplication,
    readonly config: AppConfig,
    /** The api's queue, read straight from the real Redis (not through any proxy the test cuts). */
    readonly queue: Queue,
    /** The queue's own cluster client, when the api runs on a Redis Cluster. */
    private readonly clusterClient?: Cluster,
  ) {}

  /** `redisUp: false` starts it without waiting for its queue's connection (Redis is away at start). */
  static async start(config: AppConfig = testConfig(), { redisUp = true }: { redisUp?: boolean } = {}): Promise<ApiHarness> {
    const app = await createApiApp(config);
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    // BullMQ finishes connecting in the background (an INFO command); a test that cut Redis during
    // that command would fail the queue's connection for good, which is not the outage it means.
    if (redisUp) await app.get<Queue>(getQueueToken(MAILJET_EVENTS_QUEUE)).waitUntilReady();
    const redis = config.redis;
    const cluster = redis.kind === 'cluster' ? createBullmqConnection(redis).owned : undefined;
    const queue = new Queue(MAILJET_EVENTS_QUEUE, {
      connection: cluster ?? { url: TEST_REDIS_URL },
      prefix: queueKeyPrefix(config.queuePrefix, cluster !== undefined),
    });
    return new ApiHarness(app, config, queue, cluster);
  }

  /** A callback to the default source's URL, or to `url` (a source's own, `/webhooks/mailjet/<slug>`). */
  postWebhook(
    body: string,
    {
      authorization = basicAuth(),
      contentType = 'application/json',
      url = '/webhooks/mailjet',
    }: { authorization?: string | null; contentType?: string; url?: string } = {},
  ): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { 'content-type': contentType };
    if (authorization !== null) headers.authorization = authorization;
    return this.inject({ method: 'POST', url, headers, payload: body });
  }

  get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.inject({ method: 'GET', url, headers });
  }

  /** A call to the admin API with the configured token, unless `headers` replaces it. */
  admin(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    body?: object,
    headers: Record<string, string> = { authorization: `Bearer ${this.config.adminToken}` },
  ): Promise<LightMyRequestResponse> {
    return this.inject({ method, url, headers, ...(body ? { payload: body } : {}) });
  }

  /** The ids of the events that waiting and delayed jobs carry, in numeric order, each as often as carried. */
  async queuedEventIds(): Promise<string[]> {
    const jobs = await this.queue.getJobs(['waiting', 'prioritized', 'delayed']);
    return jobs
      .flatMap((job) => decodeEventIds(job.data.events, MAX_EVENTS_PER_JOB))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map(String);
  }

  inject(options: InjectOptions): Promise<LightMyRequestResponse> {
    return this.app.getHttpAdapter().getInstance().inject(options);
  }

  /**
   * Between two tests: lets the api finish queueing what it stored, removes every job of this
   * queue (the next test's events take the same ids again), then empties the database.
   */
  async reset(db: TestDatabase): Promise<void> {
    await waitFor('the api to finish queueing the events it stored', async () => (await db.count("status = 'received'")) === 0);
    // An active job cannot be removed: wait for it to finish (or fail back to delayed, drained next round).
    await waitFor('no job left in flight', async () => {
      await this.queue.drain(true);
      return (await this.queue.getJobCountByTypes('active', 'waiting', 'delayed', 'prioritized')) === 0;
    });
    for (const finished of ['completed', 'failed'] as const) await this.queue.clean(0, 0, finished);
    await db.reset();
  }

  async close(): Promise<void> {
    await this.queue.obliterate({ force: true }).catch(() => undefined);
    await this.queue.close();
    this.clusterClient?.disconnect();
    await this.app.close();
  }
}
