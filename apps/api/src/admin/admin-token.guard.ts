import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppConfig } from '@app/config';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * The admin credential: `Authorization: Bearer $ADMIN_TOKEN`, or HTTP Basic with the token as
 * the password (any user name), which is what a browser can send to the dashboard. Compared in
 * constant time.
 */
export class AdminTokenVerifier {
  private readonly expected: Buffer;

  constructor(token: string) {
    this.expected = digest(token);
  }

  accepts(authorization: string | undefined): boolean {
    const header = authorization ?? '';
    let given: string | undefined;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (bearer) given = bearer[1];
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      given = decoded.slice(decoded.indexOf(':') + 1);
    }
    return timingSafeEqual(digest(given ?? ''), this.expected) && given !== undefined;
  }
}

@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly verifier: AdminTokenVerifier;

  constructor(config: AppConfig) {
    this.verifier = new AdminTokenVerifier(config.adminToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    if (this.verifier.accepts(http.getRequest<FastifyRequest>().headers.authorization)) return true;
    http.getResponse<FastifyReply>().header('WWW-Authenticate', 'Bearer realm="admin"');
    throw new UnauthorizedException('missing or wrong admin token (Authorization: Bearer $ADMIN_TOKEN)');
  }
}
