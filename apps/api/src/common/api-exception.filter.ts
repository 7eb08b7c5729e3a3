import { ArgumentsHost, BadGatewayException, Catch, HttpException, Logger, ServiceUnavailableException } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { isDatabaseUnavailable } from '@app/database';
import { MailjetApiError } from '@app/mailjet-api';
import { isRedisUnavailable } from '@app/queue';

// By shape rather than `instanceof Error`: errors made by Node itself come from another realm under Jest.
type ErrorLike = { name?: unknown; message?: unknown; code?: unknown };
const errorLike = (error: unknown): ErrorLike => (typeof error === 'object' && error !== null ? error : {});

/** Node's error for a request whose client went away (or was cut off) before sending all of it. */
function isClientAbort(error: unknown): boolean {
  const { code, message } = errorLike(error);
  return code === 'ECONNRESET' && message === 'aborted';
}

/**
 * Errors that are nobody's bug: PostgreSQL or Redis unreachable answers `503` with a readable
 * message (the operator retries once it is back), Mailjet's REST API refusing or failing answers
 * `502` with what Mailjet said (its keys masked), and a client that hung up mid-request is noted
 * at debug (there is no one left to answer). Everything else goes to Nest's own handling.
 */
@Catch()
export class ApiExceptionFilter extends BaseExceptionFilter {
  private readonly logger = new Logger('Http');

  catch(exception: unknown, host: ArgumentsHost): void {
    if (exception instanceof HttpException) return super.catch(exception, host);
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    const what = `${request.method} ${request.routeOptions?.url ?? request.url}`;
    if (isClientAbort(exception)) {
      this.logger.debug(`${what}: the client went away before sending the whole request`);
      return;
    }
    if (exception instanceof MailjetApiError) {
      this.logger.warn(`${what}: ${exception.message}`);
      return super.catch(new BadGatewayException(exception.message), host);
    }
    const unavailable = isRedisUnavailable(exception) ? 'Redis' : isDatabaseUnavailable(exception) ? 'PostgreSQL' : undefined;
    if (unavailable === undefined) return super.catch(exception, host);
    this.logger.warn(`${what}: ${unavailable} unavailable, answering 503: ${String(errorLike(exception).message).trim().split('\n').at(-1)}`);
    super.catch(new ServiceUnavailableException(`${unavailable} is unavailable; retry once it is back`), host);
  }
}
