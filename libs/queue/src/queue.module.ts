import { BullModule, InjectQueue, WorkerHost } from '@nestjs/bullmq';
import {
  DynamicModule,
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import { DiscoveryModule, DiscoveryService } from '@nestjs/core';
import { Queue } from 'bullmq';
import IORedis, { Redis } from 'ioredis';
import { AppConfig } from '@app/config';
import { MAILJET_EVENTS_QUEUE } from './queue.constants';
import { isRedisUnavailable } from './redis-errors';

/** A Redis client that fails at once while Redis is unreachable, instead of queueing commands. */
export const REDIS_CONNECTION = Symbol('REDIS_CONNECTION');

export type QueueRole = 'producer' | 'consumer';

/** ioredis's messages name the host and port, never the URL's password. */
const reasonOf = (error: Error) => error.message.split('\n')[0] || String((error as { code?: unknown }).code);
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);

/** A lost connection is the Redis connection's to report (once); anything else is worth a warning. */
function logQueueError(logger: Logger, source: string, error: Error): void {
  const lostConnection = CONNECTION_CODES.has(String((error as { code?: unknown }).code)) || isRedisUnavailable(error);
  if (lostConnection) logger.debug(`${source}: ${reasonOf(error)}`);
  else logger.warn(`${source}: ${reasonOf(error)}`);
}

/**
 * While Redis is down, ioredis fails every reconnect attempt (about once a second): one warning
 * when it goes, one line when it is back, the attempts in between at debug. Without a listener,
 * ioredis and BullMQ print each error with `console.error`, stack and all, over several lines.
 */
class RedisOutageLog {
  private readonly logger = new Logger('Redis');
  private down = false;

  readonly onError = (error: Error): void => {
    if (this.down) return this.logger.debug(`still unreachable: ${reasonOf(error)}`);
    this.down = true;
    this.logger.warn(`Redis unreachable (${reasonOf(error)}); reconnecting`);
  };

  readonly onReady = (): void => {
    if (!this.down) return;
    this.down = false;
    this.logger.log('Redis reachable again');
  };
}

@Injectable()
class RedisConnectionCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CONNECTION) private readonly redis: Redis) {}

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

@Global()
@Module({
  providers: [
    {
      provide: REDIS_CONNECTION,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => {
        const redis = new IORedis(config.redisUrl, {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          connectTimeout: 2000,
          // Reconnect quickly once Redis is back: the recovery loop and health depend on it.
          retryStrategy: (times: number) => Math.min(times * 100, 1000),
        });
        const outage = new RedisOutageLog();
        return redis.on('error', outage.onError).on('ready', outage.onReady);
      },
    },
    RedisConnectionCloser,
  ],
  exports: [REDIS_CONNECTION],
})
export class RedisConnectionModule {}

/**
 * The queue and the workers re-emit their connections' errors, which the Redis connection above
 * already reports (they have connections of their own to the same Redis); without a listener,
 * BullMQ prints each of them with `console.error`.
 */
@Injectable()
class QueueErrorLog implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger('BullMQ');

  constructor(
    @InjectQueue(MAILJET_EVENTS_QUEUE) private readonly queue: Queue,
    private readonly discovery: DiscoveryService,
  ) {}

  onModuleInit(): void {
    this.queue.on('error', (error) => logQueueError(this.logger, `queue ${this.queue.name}`, error));
  }

  /** Processors' workers exist once every module is initialised. */
  onApplicationBootstrap(): void {
    for (const { instance } of this.discovery.getProviders()) {
      if (!(instance instanceof WorkerHost)) continue;
      const worker = instance.worker;
      worker.on('error', (error: Error) => logQueueError(this.logger, `worker ${worker.name}`, error));
    }
  }
}

@Module({})
export class QueueModule {
  /**
   * The producer (api) adds jobs through the fail-fast client, so that a callback is never held up
   * by Redis; the consumer (worker) needs BullMQ's own connections, which wait for Redis forever.
   */
  static forRoot(role: QueueRole): DynamicModule {
    return {
      module: QueueModule,
      global: true,
      imports: [
        DiscoveryModule,
        RedisConnectionModule,
        BullModule.forRootAsync({
          imports: [RedisConnectionModule],
          inject: [AppConfig, REDIS_CONNECTION],
          useFactory: (config: AppConfig, redis: Redis) => ({
            prefix: config.queuePrefix,
            connection: role === 'producer' ? redis : { url: config.redisUrl, maxRetriesPerRequest: null },
          }),
        }),
        BullModule.registerQueue({ name: MAILJET_EVENTS_QUEUE }),
      ],
      providers: [QueueErrorLog],
      exports: [BullModule, RedisConnectionModule],
    };
  }
}
