import { BadRequestException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppConfig } from '@app/config';
import { BRIDGE_VERSION } from '@app/segment';
import { mountQueueDashboard } from './admin/queue-dashboard';
import { ApiModule } from './api.module';
import { MAILJET_WEBHOOK_PATH } from './mailjet-webhook/mailjet-webhook.controller';

/**
 * Bodies are JSON only (anything else answers 415). The Mailjet callback gets the text itself,
 * because `JSON.parse` would round MessageIDs beyond 2^53; every other route gets it parsed.
 */
function registerBodyParsers(adapter: FastifyAdapter, bodyLimit: number): void {
  adapter.getInstance().removeContentTypeParser('text/plain');
  adapter.useBodyParser('application/json', false, { bodyLimit }, (request, body: Buffer, done) => {
    const text = body.toString('utf8');
    if (request.routeOptions.url === MAILJET_WEBHOOK_PATH) return done(null, text);
    try {
      done(null, text === '' ? undefined : JSON.parse(text));
    } catch (error) {
      done(new BadRequestException(`body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}

/** OpenAPI description of the callback and the admin API, served at /docs (JSON at /docs/json). */
function mountOpenApiDocs(app: NestFastifyApplication): void {
  const description = new DocumentBuilder()
    .setTitle('mailjet-segment-bridge')
    .setDescription('Mailjet event webhooks in, Segment track calls out. See the README for the contract.')
    .setVersion(BRIDGE_VERSION)
    .addBasicAuth({ type: 'http', scheme: 'basic', description: 'MAILJET_WEBHOOK_USER / MAILJET_WEBHOOK_PASSWORD' }, 'mailjet')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' })
    .build();
  SwaggerModule.setup('docs', app, SwaggerModule.createDocument(app, description));
}

/** The api as `main.ts` runs it; tests build it the same way. */
export async function createApiApp(config: AppConfig): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: config.http.maxBodyBytes,
    // Behind a load balancer a SIGTERM must not cut keep-alive connections mid-request.
    forceCloseConnections: 'idle',
  });
  registerBodyParsers(adapter, config.http.maxBodyBytes);
  const app = await NestFactory.create<NestFastifyApplication>(ApiModule.register(config), adapter, {
    logger: config.createLogger(),
    // Nest's own parsers (JSON, urlencoded) would take over content types registerBodyParsers refuses.
    bodyParser: false,
  });
  await mountQueueDashboard(app, config);
  mountOpenApiDocs(app);
  app.enableShutdownHooks();
  return app;
}
