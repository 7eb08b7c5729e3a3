import { Controller, Get, HttpCode, HttpStatus, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { InjectQueue } from '@nestjs/bullmq';
import { Queue } from 'bullmq';
import { PrismaService } from '@app/database';
import { MAILJET_EVENTS_QUEUE, REDIS_CONNECTION, RedisClient } from '@app/queue';
import { withTimeout } from '@app/common';
import { SourceDirectory } from '@app/sources';

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
    @Inject(REDIS_CONNECTION) private readonly redis: RedisClient,
    @InjectQueue(MAILJET_EVENTS_QUEUE) private readonly queue: Queue,
    private readonly sources: SourceDirectory,
  ) {}

  @Get('live')
  @HttpCode(HttpStatus.OK)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /**
   * 200 when PostgreSQL and Redis both answer in time and every source's secrets open, else 503
   * with what is wrong.
   */
  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply) {
    const [postgres, redis] = await Promise.all([
      check('PostgreSQL', () => this.prisma.pool.query('select 1')),
      // A key of the queue, not a ping: on a cluster, that is the master of the queue's slot answering.
      check('Redis', () => this.redis.exists(this.queue.toKey('meta'))),
    ]);
    const unreadable = this.sources.unreadable();
    const sources: CheckResult =
      unreadable.length === 0
        ? { status: 'up' }
        : { status: 'down', error: `SECRETS_KEY does not open the secrets of source(s) ${unreadable.map((source) => source.slug).join(', ')}` };
    const ok = postgres.status === 'up' && redis.status === 'up' && sources.status === 'up';
    reply.status(ok ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return { status: ok ? 'ok' : 'unavailable', checks: { postgres, redis, sources } };
  }
}
