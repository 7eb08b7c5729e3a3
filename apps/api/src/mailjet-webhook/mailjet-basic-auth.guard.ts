import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppConfig } from '@app/config';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * HTTP Basic, as Mailjet sends it from `https://user:pass@host/webhooks/mailjet`. Both sides are
 * hashed before the constant-time comparison so that neither length nor content leaks.
 */
@Injectable()
export class MailjetBasicAuthGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(config: AppConfig) {
    const { user, password } = config.webhookCredentials;
    this.expected = digest(`${user}:${password}`);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const header = http.getRequest<FastifyRequest>().headers.authorization ?? '';
    const match = /^Basic\s+([A-Za-z0-9+/=]*)\s*$/i.exec(header);
    const given = match ? Buffer.from(match[1], 'base64').toString('utf8') : '';
    if (match && timingSafeEqual(digest(given), this.expected)) return true;
    http.getResponse<FastifyReply>().header('WWW-Authenticate', 'Basic realm="mailjet-webhook", charset="UTF-8"');
    throw new UnauthorizedException('missing or wrong Basic credentials for the Mailjet callback');
  }
}
