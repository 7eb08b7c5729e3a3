import { BadRequestException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Secret } from '@app/common';
import { AppConfig } from '@app/config';
import { jsonNestingDepth } from '@app/mailjet';
import { BRIDGE_VERSION } from '@app/segment';
import { BridgeMetrics } from '@app/metrics';
import { DEFAULT_SOURCE_SLUG, KnownSource, SourceDirectory } from '@app/sources';
import { mountQueueDashboard, QUEUE_DASHBOARD_PATH } from './admin/queue-dashboard';
import { ApiModule } from './api.module';
import { AdminTokenDoor, BasicCredentialsDoor, Door, guardDoors, Refusal, RotatingCredentialsDoor } from './common/request-authentication';
import { discardUnreadBodies } from './common/unread-body';
import { MAILJET_WEBHOOK_PATH, SOURCE_WEBHOOK_PATH } from './mailjet-webhook/mailjet-webhook.controller';

const METRICS_PATH = '/metrics';
/** Swagger UI here, the OpenAPI document at `-json` and `-yaml` beside it. */
const DOCS_PATH = '/docs';
/** Admin bodies are a few levels deep; deeper ones are refused before anything walks them. */
const MAX_ADMIN_BODY_DEPTH = 32;
/** Headers are a few hundred bytes: a client still sending them after this is not a slow link. */
const HEADERS_TIMEOUT_MS = 10_000;

const under = (route: string, base: string) => route === base || route.startsWith(`${base}/`);

/**
 * A source's callback door, from the cached sources (no query per request): an unknown or deleted
 * slug is `404` whatever the credentials. Doors are made once per version of the source.
 */
function sourceDoors(directory: () => SourceDirectory | undefined): (request: FastifyRequest) => Door | Refusal {
  const doors = new WeakMap<KnownSource, Door>();
  return (request) => {
    const sources = directory();
    if (!sources?.ready) {
      return { statusCode: 503, error: 'Service Unavailable', message: 'the sources are not loaded yet (PostgreSQL unavailable); retry later' };
    }
    const { slug } = request.params as { slug?: string };
    const source = slug === undefined ? undefined : sources.bySlug(slug);
    if (!source) {
      if (sources.unreadable().some((unreadable) => unreadable.slug === slug)) {
        return { statusCode: 503, error: 'Service Unavailable', message: "this api cannot open the source's secrets (SECRETS_KEY); the api log says more" };
      }
      return { statusCode: 404, error: 'Not Found', message: 'no such source' };
    }
    let door = doors.get(source);
    if (!door) doors.set(source, (door = new RotatingCredentialsDoor(source.webhook.user, source.webhook.passwords)));
    return door;
  };
}

/**
 * Which credential each route asks for. Routes that no rule names are admin routes, so that a
 * new one is never open by mistake.
 */
function doorsOf(config: AppConfig, directory: () => SourceDirectory | undefined): (route: string, request: FastifyRequest) => Door | Refusal | 'open' {
  const { user, password } = config.webhookCredentials;
  const mailjet = new BasicCredentialsDoor(user, password);
  const sourceDoorOf = sourceDoors(directory);
  const adminToken = new Secret(config.adminToken);
  const admin = new AdminTokenDoor(adminToken, false);
  const adminInBrowser = new AdminTokenDoor(adminToken, true);
  return (route, request) => {
    if (route === MAILJET_WEBHOOK_PATH) return mailjet;
    if (route === SOURCE_WEBHOOK_PATH) return sourceDoorOf(request);
    // Its own bearer token (METRICS_TOKEN), checked by the metrics controller.
    if (route.startsWith('/health/') || route === METRICS_PATH) return 'open';
    if (under(route, QUEUE_DASHBOARD_PATH) || under(route, DOCS_PATH) || route.startsWith(`${DOCS_PATH}-`)) return adminInBrowser;
    return admin;
  };
}

/**
 * Bodies are JSON only (anything else answers 415). The Mailjet callback gets the text itself,
 * because `JSON.parse` would round MessageIDs beyond 2^53; every other route gets it parsed.
 */
function registerBodyParsers(adapter: FastifyAdapter, bodyLimit: number): void {
  adapter.getInstance().removeContentTypeParser('text/plain');
  adapter.useBodyParser('application/json', false, { bodyLimit }, (request, body: Buffer, done) => {
    const text = body.toString('utf8');
    const route = request.routeOptions.url;
    if (route === MAILJET_WEBHOOK_PATH || route === SOURCE_WEBHOOK_PATH) return done(null, text);
    // Validation walks what JSON.parse builds recursively: a deep one would overflow the stack (500).
    if (jsonNestingDepth(text) > MAX_ADMIN_BODY_DEPTH) {
      return done(new BadRequestException(`body nests more than ${MAX_ADMIN_BODY_DEPTH} levels deep`), undefined);
    }
    try {
      done(null, text === '' ? undefined : JSON.parse(text));
    } catch (error) {
      done(new BadRequestException(`body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}

/** msb_webhook_requests_total: every answer of a callback URL, by source (an unknown slug is `unknown`: labels stay bounded) and status. */
function countWebhookRequests(instance: FastifyInstance, metrics: BridgeMetrics, sources: SourceDirectory): void {
  instance.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route !== MAILJET_WEBHOOK_PATH && route !== SOURCE_WEBHOOK_PATH) return;
    const { slug } = request.params as { slug?: string };
    const known = slug === undefined || sources.bySlug(slug) !== undefined || sources.unreadable().some((source) => source.slug === slug);
    const source = slug === undefined ? DEFAULT_SOURCE_SLUG : known ? slug : 'unknown';
    metrics.webhookRequests.inc({ source, code: String(reply.statusCode) });
  });
}

/** OpenAPI description of the callback and the admin API: Swagger UI at /docs, the document at /docs-json and /docs-yaml. */
function mountOpenApiDocs(app: NestFastifyApplication): void {
  const description = new DocumentBuilder()
    .setTitle('mailjet-segment-bridge')
    .setDescription('Mailjet event webhooks in, Segment track calls out. See the README for the contract.')
    .setVersion(BRIDGE_VERSION)
    .addBasicAuth({ type: 'http', scheme: 'basic', description: 'MAILJET_WEBHOOK_USER / MAILJET_WEBHOOK_PASSWORD' }, 'mailjet')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' })
    .build();
  SwaggerModule.setup(DOCS_PATH.slice(1), app, SwaggerModule.createDocument(app, description));
}

/** The api as `main.ts` runs it; tests build it the same way. */
export async function createApiApp(config: AppConfig): Promise<NestFastifyApplication> {
  const { maxBodyBytes, requestTimeoutMs } = config.http;
  const adapter = new FastifyAdapter({
    bodyLimit: maxBodyBytes,
    // Behind a load balancer a SIGTERM must not cut keep-alive connections mid-request.
    forceCloseConnections: 'idle',
    // A request must arrive whole within this (Node answers 408), so that a client trickling a
    // body cannot hold a socket for long. A socket on which nothing moves for twice as long (a
    // client that does not read its answer) is closed.
    requestTimeout: requestTimeoutMs,
    connectionTimeout: 2 * requestTimeoutMs,
    // The headers deadline also closes a connection that sends nothing. Node checks both deadlines
    // every 30 s by default, which would let a trickle last that much longer.
    http: { headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs), connectionsCheckingInterval: 1000 },
  });
  registerBodyParsers(adapter, maxBodyBytes);
  // Both before any route or plugin, so that every one of them gets them.
  // The source cache is Nest's; the hook reads it once the app exists (no request comes before).
  let directory: SourceDirectory | undefined;
  guardDoors(adapter.getInstance(), doorsOf(config, () => directory));
  discardUnreadBodies(adapter.getInstance(), 2 * maxBodyBytes);
  const app = await NestFactory.create<NestFastifyApplication>(ApiModule.register(config), adapter, {
    logger: config.createLogger(),
    // Nest's own parsers (JSON, urlencoded) would take over content types registerBodyParsers refuses.
    bodyParser: false,
  });
  directory = app.get(SourceDirectory);
  countWebhookRequests(adapter.getInstance(), app.get(BridgeMetrics), app.get(SourceDirectory));
  app.useSecurityHeaders({
    contentSecurityPolicy: { directives: { frameAncestors: ["'none'"], upgradeInsecureRequests: null } },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // TLS ends in front of the api: HSTS for the whole host is that proxy's decision.
    strictTransportSecurity: false,
  });
  await mountQueueDashboard(app);
  mountOpenApiDocs(app);
  app.enableShutdownHooks();
  return app;
}
