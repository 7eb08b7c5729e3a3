import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseAuthorization, Secret } from '@app/common';

/** One credential check, and the challenge a `401` carries to say what to send. */
export interface Door {
  admits(authorization: string | undefined): boolean;
  readonly challenge: string;
  readonly refusal: string;
  /** Whether a browser may come in with credentials it cached, which any site can make it send. */
  readonly opensToBrowsers: boolean;
}

/** HTTP Basic with the configured user and password, as Mailjet sends it from `https://user:pass@host/...`. */
export class BasicCredentialsDoor implements Door {
  readonly challenge = 'Basic realm="mailjet-webhook", charset="UTF-8"';
  readonly refusal = 'missing or wrong Basic credentials for the Mailjet callback';
  // Only a JSON body is accepted, which no page on another site can send without CORS (refused).
  readonly opensToBrowsers = false;
  private readonly credentials: Secret;

  constructor(user: string, password: string) {
    this.credentials = new Secret(`${user}:${password}`);
  }

  admits(authorization: string | undefined): boolean {
    const given = parseAuthorization(authorization);
    return this.credentials.matches(given?.scheme === 'basic' ? `${given.user}:${given.password}` : undefined);
  }
}

/** A refusal that does not depend on the credentials: no such source (404), sources not loaded yet (503). */
export interface Refusal {
  statusCode: 404 | 503;
  error: string;
  message: string;
}

/**
 * HTTP Basic with one of several user and password pairs, each valid until its time (a rotated-out
 * webhook password during its grace window). Every pair is compared, whichever matches, so that
 * the time taken says nothing about which one did.
 */
export class RotatingCredentialsDoor implements Door {
  readonly challenge = 'Basic realm="mailjet-webhook", charset="UTF-8"';
  readonly refusal = 'missing or wrong Basic credentials for the Mailjet callback of this source';
  readonly opensToBrowsers = false;
  private readonly credentials: Array<{ secret: Secret; validUntil: number | null }>;

  constructor(user: string, passwords: ReadonlyArray<{ password: string; validUntil: number | null }>) {
    this.credentials = passwords.map(({ password, validUntil }) => ({ secret: new Secret(`${user}:${password}`), validUntil }));
  }

  admits(authorization: string | undefined): boolean {
    const given = parseAuthorization(authorization);
    const offered = given?.scheme === 'basic' ? `${given.user}:${given.password}` : undefined;
    const now = Date.now();
    let admitted = false;
    for (const { secret, validUntil } of this.credentials) {
      const matches = secret.matches(offered);
      admitted = (matches && (validUntil === null || now < validUntil)) || admitted;
    }
    return admitted;
  }
}

/**
 * The admin token as `Authorization: Bearer`, a header a browser never adds by itself, so that a
 * page on another site cannot make one act with it. Where a browser must come in (the queue
 * dashboard, the API description), HTTP Basic with the token as the password (any user) is
 * accepted too; a browser replays cached Basic credentials to every path under the one that asked.
 */
export class AdminTokenDoor implements Door {
  readonly challenge: string;
  readonly refusal: string;
  readonly opensToBrowsers: boolean;

  constructor(
    private readonly token: Secret,
    private readonly acceptsBasic: boolean,
  ) {
    this.opensToBrowsers = acceptsBasic;
    this.challenge = acceptsBasic
      ? 'Basic realm="mailjet-segment-bridge admin: any user, the admin token as password", charset="UTF-8"'
      : 'Bearer realm="admin"';
    this.refusal = acceptsBasic
      ? 'missing or wrong admin token (any user name, the admin token as password; or Authorization: Bearer $ADMIN_TOKEN)'
      : 'missing or wrong admin token (Authorization: Bearer $ADMIN_TOKEN)';
  }

  admits(authorization: string | undefined): boolean {
    const given = parseAuthorization(authorization);
    const offered = given?.scheme === 'bearer' ? given.token : this.acceptsBasic && given?.scheme === 'basic' ? given.password : undefined;
    return this.token.matches(offered);
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A browser says where a request comes from (Fetch Metadata, in every current browser); other
 * clients send no such header and are not concerned.
 */
function isCrossSiteChange(method: string, fetchSite: string | string[] | undefined): boolean {
  return !SAFE_METHODS.has(method) && fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none';
}

/**
 * Checks credentials as soon as the headers are in, before the body is read: a client without
 * them gets its `401` without the api buffering a byte of what it sends. The door is chosen on
 * the route Fastify matched (its pattern, never the raw URL, which a client can encode); a
 * request that matches no route goes on to its `404`. Behind a door open to browsers, a change
 * requested from another site is refused (`403`): the browser would add the credentials itself.
 */
export function guardDoors(instance: FastifyInstance, doorOf: (route: string, request: FastifyRequest) => Door | Refusal | 'open'): void {
  instance.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route === undefined) return;
    const door = doorOf(route, request);
    if (door === 'open') return;
    if ('statusCode' in door) return reply.code(door.statusCode).send(door);
    if (!door.admits(request.headers.authorization)) {
      return reply
        .code(401)
        .header('www-authenticate', door.challenge)
        .send({ statusCode: 401, error: 'Unauthorized', message: door.refusal });
    }
    if (door.opensToBrowsers && isCrossSiteChange(request.method, request.headers['sec-fetch-site'])) {
      return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: 'a change requested from another site is refused' });
    }
  });
}
