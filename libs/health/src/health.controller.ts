import { Controller, Get, HttpCode, HttpStatus, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Redis } from 'ioredis';
import { PrismaService } from '@app/database';
import { REDIS_CONNECTION } from '@app/queue';
import { withTimeout } from '@app/common';

const CHECK_TIMEOUT_MS = 2000;

type CheckResult = { status: 'up' } | { status: 'down'; error: string };

async function check(what: string, probe: () => Promise<unknown>): Promise<CheckResult> {
  try {
    await withTimeout(probe(), CHECK_TIMEOUT_MS, what);
    return { status: 'up' };
  } catch (error) {
    return { status: 'down', error: (error as Error).message.split('\n')[0] };
  }
}

@Controller('health')
export class HealthController {
  constructor(
    private readonly prisma: PrismaService,
    @Inject(REDIS_CONNECTION) private readonly redis: Redis,
  ) {}

  @Get('live')
  @HttpCode(HttpStatus.OK)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** 200 when PostgreSQL and Redis both answer in time, else 503 with what is down. */
  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply) {
    const [postgres, redis] = await Promise.all([
      check('PostgreSQL', () => this.prisma.pool.query('select 1')),
      check('Redis', () => this.redis.ping()),
    ]);
    const ok = postgres.status === 'up' && redis.status === 'up';
    reply.status(ok ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return { status: ok ? 'ok' : 'unavailable', checks: { postgres, redis } };
  }
}
