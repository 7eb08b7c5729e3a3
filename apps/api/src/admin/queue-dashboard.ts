import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BullBoardFastifyAdapter } from '@bull-board/fastify';
import { getQueueToken } from '@nestjs/bullmq';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import { AppConfig } from '@app/config';
import { MAILJET_EVENTS_QUEUE } from '@app/queue';
import { AdminTokenVerifier } from './admin-token.guard';

export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/**
 * Bull Board at /admin/queues, behind the admin token in a form a browser can send: HTTP Basic
 * with the token as the password (or the Bearer header, for scripts).
 */
export async function mountQueueDashboard(app: NestFastifyApplication, config: AppConfig): Promise<void> {
  const serverAdapter = new BullBoardFastifyAdapter().setBasePath(QUEUE_DASHBOARD_PATH);
  createBullBoard({ queues: [new BullMQAdapter(app.get<Queue>(getQueueToken(MAILJET_EVENTS_QUEUE)))], serverAdapter });
  const verifier = new AdminTokenVerifier(config.adminToken);
  await app.getHttpAdapter().getInstance().register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      if (verifier.accepts(request.headers.authorization)) return;
      await reply
        .code(401)
        .header('WWW-Authenticate', 'Basic realm="mailjet-segment-bridge admin: any user, the admin token as password"')
        .send({ statusCode: 401, message: 'missing or wrong admin token' });
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: QUEUE_DASHBOARD_PATH });
  });
}
