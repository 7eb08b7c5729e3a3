import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppConfig } from '@app/config';
import { parseAuthorization, Secret } from '../common/authorization';

/**
 * HTTP Basic, as Mailjet sends it from `https://user:pass@host/webhooks/mailjet`. Both sides are
 * hashed before the constant-time comparison so that neither length nor content leaks.
 */
@Injectable()
export class MailjetBasicAuthGuard implements CanActivate {
  private readonly credentials: Secret;

  constructor(config: AppConfig) {
    const { user, password } = config.webhookCredentials;
    this.credentials = new Secret(`${user}:${password}`);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const given = parseAuthorization(http.getRequest<FastifyRequest>().headers.authorization);
    if (given?.scheme === 'basic' && this.credentials.matches(`${given.user}:${given.password}`)) return true;
    http.getResponse<FastifyReply>().header('WWW-Authenticate', 'Basic realm="mailjet-webhook", charset="UTF-8"');
    throw new UnauthorizedException('missing or wrong Basic credentials for the Mailjet callback');
  }
}
