import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import IORedis, { Redis } from 'ioredis';
import { AppConfig } from '@app/config';
import { MAILJET_EVENTS_QUEUE } from './queue.constants';

/** A Redis client that fails at once while Redis is unreachable, instead of queueing commands. */
export const REDIS_CONNECTION = Symbol('REDIS_CONNECTION');

export type QueueRole = 'producer' | 'consumer';

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
      useFactory: (config: AppConfig) =>
        new IORedis(config.redisUrl, {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          connectTimeout: 2000,
          // Reconnect quickly once Redis is back: the recovery loop and health depend on it.
          retryStrategy: (times: number) => Math.min(times * 100, 1000),
        }),
    },
    RedisConnectionCloser,
  ],
  exports: [REDIS_CONNECTION],
})
export class RedisConnectionModule {}

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
      exports: [BullModule, RedisConnectionModule],
    };
  }
}
