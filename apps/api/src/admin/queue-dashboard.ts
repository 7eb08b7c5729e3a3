import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BullBoardFastifyAdapter } from '@bull-board/fastify';
import { getQueueToken } from '@nestjs/bullmq';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import { MAILJET_EVENTS_QUEUE, REDIS_CONNECTION, RedisClient } from '@app/queue';

export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/**
 * Bull Board at /admin/queues. Its door (the admin token, as Basic for a browser) is checked with
 * every other one, before the body is read (see `doorsOf` in api.app.ts).
 */
export async function mountQueueDashboard(app: NestFastifyApplication): Promise<void> {
  const serverAdapter = new BullBoardFastifyAdapter().setBasePath(QUEUE_DASHBOARD_PATH);
  createBullBoard({ queues: [new BullMQAdapter(app.get<Queue>(getQueueToken(MAILJET_EVENTS_QUEUE)))], serverAdapter });
  const redis = app.get<RedisClient>(REDIS_CONNECTION);
  await app.getHttpAdapter().getInstance().register(async (scope) => {
    // Bull Board's calls wait for Redis as long as BullMQ does (forever, if it was away at start).
    scope.addHook('onRequest', async (_request, reply) => {
      if (redis.status === 'ready') return;
      await reply.code(503).send({ statusCode: 503, message: `Redis is unavailable (${redis.status}); the dashboard needs it` });
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: QUEUE_DASHBOARD_PATH });
  });
}
