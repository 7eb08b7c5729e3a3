import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BullBoardFastifyAdapter } from '@bull-board/fastify';
import { getQueueToken } from '@nestjs/bullmq';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import { MAILJET_EVENTS_QUEUE } from '@app/queue';

export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/**
 * Bull Board at /admin/queues. Its door (the admin token, as Basic for a browser) is checked with
 * every other one, before the body is read (see `doorsOf` in api.app.ts).
 */
export async function mountQueueDashboard(app: NestFastifyApplication): Promise<void> {
  const serverAdapter = new BullBoardFastifyAdapter().setBasePath(QUEUE_DASHBOARD_PATH);
  createBullBoard({ queues: [new BullMQAdapter(app.get<Queue>(getQueueToken(MAILJET_EVENTS_QUEUE)))], serverAdapter });
  await app.getHttpAdapter().getInstance().register(serverAdapter.registerPlugin(), { prefix: QUEUE_DASHBOARD_PATH });
}
