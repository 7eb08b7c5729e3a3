import { BullModule, InjectQueue } from '@nestjs/bullmq';
import {
  DynamicModule,
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Cluster } from 'ioredis';
import { AppConfig } from '@app/config';
import { MAILJET_EVENTS_QUEUE } from './queue.constants';
import { createBullmqConnection, createFailFastConnection, queueKeyPrefix, RedisClient } from './redis-connections';
import { isRedisUnavailable } from './redis-errors';

/** A Redis client (`RedisClient`: one server or a cluster) that fails at once while Redis is unreachable, instead of queueing commands. */
export const REDIS_CONNECTION = Symbol('REDIS_CONNECTION');
/** BullMQ's connection for the worker process (see `createBullmqConnection`). */
const BULLMQ_CONNECTION = Symbol('BULLMQ_CONNECTION');

export type QueueRole = 'producer' | 'consumer';

/**
 * ioredis's messages name the host and port, never the URL's password. A cluster that cannot
 * refresh its slots says only "Failed to refresh slots cache": the node's own error (a wrong
 * password, say) rides along as `lastNodeError`.
 */
function reasonOf(error: Error): string {
  const reason = error.message.split('\n')[0] || String((error as { code?: unknown }).code);
  const nodeError = (error as { lastNodeError?: Error }).lastNodeError;
  return nodeError?.message ? `${reason} (${nodeError.message.split('\n')[0]})` : reason;
}
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);

/**
 * What the queue's and the worker's `error` events say: a lost connection is the Redis
 * connection's to report (once), at debug here; anything else is worth a warning. Without a
 * listener, BullMQ prints each of them with `console.error`, stack and all.
 */
export function logQueueError(logger: Logger, source: string, error: Error): void {
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
  constructor(@Inject(REDIS_CONNECTION) private readonly redis: RedisClient) {}

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
        const redis = createFailFastConnection(config.redis);
        const outage = new RedisOutageLog();
        // A cluster's client reports each node's errors apart; `error` says the cluster is lost.
        redis.on('error', outage.onError).on('ready', outage.onReady);
        return redis;
      },
    },
    RedisConnectionCloser,
  ],
  exports: [REDIS_CONNECTION],
})
export class RedisConnectionModule {}

/**
 * The queue re-emits its connection's errors, which the Redis connection above already reports
 * (it has a connection of its own to the same Redis). A worker's are heard by its processor
 * (`@OnWorkerEvent('error')`), attached as the worker is made, before it first connects.
 */
@Injectable()
class QueueErrorLog implements OnModuleInit {
  private readonly logger = new Logger('BullMQ');

  constructor(@InjectQueue(MAILJET_EVENTS_QUEUE) private readonly queue: Queue) {}

  onModuleInit(): void {
    this.queue.on('error', (error) => logQueueError(this.logger, `queue ${this.queue.name}`, error));
  }
}

/**
 * Closes the cluster client that the worker process's BullMQ shares (BullMQ closes the connections
 * it made, never one it was given), once the queue is closed; one Redis server has none.
 */
@Injectable()
class BullmqConnectionCloser implements OnApplicationShutdown {
  constructor(
    @Inject(BULLMQ_CONNECTION) private readonly bullmq: { owned?: Cluster },
    @InjectQueue(MAILJET_EVENTS_QUEUE) private readonly queue: Queue,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    const owned = this.bullmq.owned;
    if (!owned) return;
    await this.queue.close().catch(() => undefined);
    await owned.quit().catch(() => owned.disconnect());
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
        RedisConnectionModule,
        BullModule.forRootAsync({
          imports: [QueueModule.bullmqConnection(role)],
          inject: [AppConfig, REDIS_CONNECTION, BULLMQ_CONNECTION],
          useFactory: (config: AppConfig, redis: RedisClient, bullmq: Partial<ReturnType<typeof createBullmqConnection>>) => ({
            prefix: queueKeyPrefix(config.queuePrefix, config.redis.kind === 'cluster'),
            connection: bullmq.connection ?? redis,
          }),
        }),
        BullModule.registerQueue({ name: MAILJET_EVENTS_QUEUE }),
      ],
      providers: [QueueErrorLog, BullmqConnectionCloser],
      exports: [BullModule, RedisConnectionModule],
    };
  }

  /** BullMQ's connection of the worker process; the api's BullMQ uses the fail-fast client and needs none. */
  private static bullmqConnection(role: QueueRole): DynamicModule {
    return {
      module: class BullmqConnectionModule {},
      global: true,
      imports: [RedisConnectionModule],
      providers: [
        {
          provide: BULLMQ_CONNECTION,
          inject: [AppConfig],
          useFactory: (config: AppConfig) => (role === 'consumer' ? createBullmqConnection(config.redis) : {}),
        },
      ],
      exports: [BULLMQ_CONNECTION, RedisConnectionModule],
    };
  }
}
