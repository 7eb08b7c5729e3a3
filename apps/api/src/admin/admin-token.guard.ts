import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppConfig } from '@app/config';
import { parseAuthorization, Secret } from '../common/authorization';

/**
 * The admin credential: `Authorization: Bearer $ADMIN_TOKEN`, or HTTP Basic with the token as
 * the password (any user name), which is what a browser can send to the dashboard. Compared in
 * constant time.
 */
export class AdminTokenVerifier {
  private readonly token: Secret;

  constructor(token: string) {
    this.token = new Secret(token);
  }

  accepts(authorization: string | undefined): boolean {
    const given = parseAuthorization(authorization);
    return this.token.matches(given?.scheme === 'bearer' ? given.token : given?.password);
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
