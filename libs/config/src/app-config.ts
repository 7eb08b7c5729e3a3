import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import { Environment, LOG_LEVELS, RequiredVariable } from './environment';
import { parseRedisClusterNodes, RedisTarget } from './redis-target';

export interface SegmentSettings {
  writeKey: string;
  host: string;
}

export interface RetryPolicy {
  maxAttempts: number;
  backoffMs: number;
}

/** One JSON object per line; before the configuration is read (or when it is invalid), at `log` and above. */
export function createJsonLogger(logLevels: LogLevel[] = LOG_LEVELS.slice(0, LOG_LEVELS.indexOf('log') + 1)): ConsoleLogger {
  return new ConsoleLogger({ json: true, colors: false, logLevels });
}

/** Typed, validated configuration; the only reader of the environment is `loadEnvironment`. */
export class AppConfig {
  constructor(private readonly environment: Environment) {}

  get databaseUrl(): string {
    return this.environment.DATABASE_URL;
  }

  /** Connections of the process's PostgreSQL pool. */
  get databasePoolSize(): number {
    return this.environment.DATABASE_POOL_SIZE;
  }

  /** REDIS_URL's server, or the Redis Cluster of REDIS_CLUSTER_NODES when that is set. */
  get redis(): RedisTarget {
    const nodes = this.environment.REDIS_CLUSTER_NODES;
    if (!nodes) return { kind: 'single', url: this.environment.REDIS_URL };
    const cluster = parseRedisClusterNodes(nodes);
    // loadEnvironment refused an unreadable value already.
    if (typeof cluster === 'string') throw new Error(cluster);
    return cluster;
  }

  get queuePrefix(): string {
    return this.environment.QUEUE_PREFIX;
  }

  /** How long a `queued` event waits before the sweep checks that its job still exists. */
  get queueSweepAfterMs(): number {
    return this.environment.QUEUE_SWEEP_AFTER_SECONDS * 1000;
  }

  get http(): { port: number; host: string; maxBodyBytes: number; requestTimeoutMs: number } {
    return {
      port: this.environment.PORT,
      host: this.environment.HOST,
      maxBodyBytes: this.environment.WEBHOOK_MAX_BODY_BYTES,
      requestTimeoutMs: this.environment.HTTP_REQUEST_TIMEOUT_MS,
    };
  }

  get workerHealthPort(): number {
    return this.environment.WORKER_HEALTH_PORT;
  }

  get webhookCredentials(): { user: string; password: string } {
    return {
      user: this.required('MAILJET_WEBHOOK_USER'),
      password: this.required('MAILJET_WEBHOOK_PASSWORD'),
    };
  }

  /** The default source's Basic credentials, where this process is given them. */
  get webhookCredentialsIfSet(): { user: string; password: string } | undefined {
    const { MAILJET_WEBHOOK_USER: user, MAILJET_WEBHOOK_PASSWORD: password } = this.environment;
    return user && password ? { user, password } : undefined;
  }

  get segmentHost(): string {
    return this.environment.SEGMENT_HOST.replace(/\/+$/, '');
  }

  /** The default source's write key, where this process is given it (the worker; the api does not need it). */
  get segmentWriteKeyIfSet(): string | undefined {
    return this.environment.SEGMENT_WRITE_KEY;
  }

  /** The bearer token of /metrics: METRICS_TOKEN, else ADMIN_TOKEN; undefined when neither is set (the worker may have none). */
  get metricsToken(): string | undefined {
    return this.environment.METRICS_TOKEN ?? this.environment.ADMIN_TOKEN;
  }

  get adminToken(): string {
    return this.required('ADMIN_TOKEN');
  }

  get segment(): SegmentSettings {
    return {
      writeKey: this.required('SEGMENT_WRITE_KEY'),
      host: this.environment.SEGMENT_HOST,
    };
  }

  /** Set on each job when it is queued, so the api needs it too (but not the write key). */
  get retryPolicy(): RetryPolicy {
    return {
      maxAttempts: this.environment.SEGMENT_MAX_ATTEMPTS,
      backoffMs: this.environment.SEGMENT_BACKOFF_MS,
    };
  }

  get workerConcurrency(): number {
    return this.environment.WORKER_CONCURRENCY;
  }

  get userIdPayloadKey(): string {
    return this.environment.USER_ID_PAYLOAD_KEY;
  }

  /** SECRETS_KEY as the 32 bytes of an AES-256 key; undefined when it is not set. */
  get secretsKey(): Buffer | undefined {
    const hex = this.environment.SECRETS_KEY;
    return hex ? Buffer.from(hex, 'hex') : undefined;
  }

  /** How long a rotated-out webhook password keeps working. */
  get webhookPasswordGraceMs(): number {
    return Math.round(this.environment.WEBHOOK_PASSWORD_GRACE_HOURS * 3_600_000);
  }

  /** PUBLIC_URL without its trailing slash; undefined when it is not set. */
  get publicUrl(): string | undefined {
    return this.environment.PUBLIC_URL?.replace(/\/+$/, '');
  }

  /** The Mailjet REST API: its base URL, and the default source's keys where they are set. */
  get mailjetApi(): { url: string; defaultKeys: { apiKey: string; apiSecret: string } | undefined; callbackCheckMs: number; backfillToleranceSeconds: number } {
    const { MAILJET_API_KEY: apiKey, MAILJET_API_SECRET: apiSecret } = this.environment;
    return {
      url: this.environment.MAILJET_API_URL.replace(/\/+$/, ''),
      defaultKeys: apiKey && apiSecret ? { apiKey, apiSecret } : undefined,
      callbackCheckMs: this.environment.MAILJET_CALLBACK_CHECK_MINUTES * 60_000,
      backfillToleranceSeconds: this.environment.BACKFILL_TIME_TOLERANCE_SECONDS,
    };
  }

  /** What the worker adds from Mailjet's REST API, and how long it may wait for it. */
  get mailjetEnrichment(): { subject: boolean; list: boolean; timeoutMs: number } {
    const kinds = this.environment.MAILJET_ENRICH.split(',');
    return { subject: kinds.includes('subject'), list: kinds.includes('list'), timeoutMs: this.environment.MAILJET_ENRICH_TIMEOUT_MS };
  }

  /** Days raw events are kept (whole monthly partitions are dropped after); undefined: forever. */
  get eventRetentionDays(): number | undefined {
    return this.environment.EVENT_RETENTION_DAYS;
  }

  /** One JSON object per line (for log collectors), at LOG_LEVEL and above. */
  createLogger(): ConsoleLogger {
    return createJsonLogger(this.logLevels);
  }

  /** LOG_LEVEL and every level more severe than it, as Nest's logger takes them. */
  get logLevels(): LogLevel[] {
    return LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(this.environment.LOG_LEVEL) + 1);
  }

  private required(name: RequiredVariable): string {
    const value = this.environment[name];
    if (!value) throw new Error(`${name} is required but not set`);
    return value;
  }
}
