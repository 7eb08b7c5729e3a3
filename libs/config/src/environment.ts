import type { LogLevel } from '@nestjs/common';
import { plainToInstance, Transform } from 'class-transformer';
import { IsIn, IsInt, IsNotEmpty, IsNumber, IsOptional, IsString, Matches, Max, Min, MinLength, validateSync } from 'class-validator';
import { DEFAULT_REDIS_URL, parseRedisClusterNodes } from './redis-target';

/** Nest's log levels, most severe first. */
export const LOG_LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

const toInt = ({ value }: { value: unknown }) =>
  value === undefined || value === '' ? undefined : /^-?\d+$/.test(String(value)) ? Number(value) : value;

/** Secrets we let the operator choose; shorter ones are guessable (SEGMENT_WRITE_KEY is issued by Segment). */
export const MIN_SECRET_LENGTH = 16;
const LongEnough = () =>
  MinLength(MIN_SECRET_LENGTH, { message: `$property must be at least ${MIN_SECRET_LENGTH} characters (openssl rand -hex 16)` });

/** Every environment variable the processes read (SPEC section 2), with its default. */
export class Environment {
  @Matches(/^postgres(ql)?:\/\//, { message: 'DATABASE_URL must be a postgresql:// URL' })
  DATABASE_URL = 'postgresql://postgres@localhost:5432/mailjet_segment';

  /**
   * PostgreSQL connections each process may open for queries (the sources listener is one more).
   * Replicas times this must stay under the server's max_connections (docs/SCALING.md).
   */
  @Transform(toInt)
  @IsInt()
  @Min(2)
  @Max(500)
  DATABASE_POOL_SIZE = 20;

  @Matches(/^rediss?:\/\//, { message: 'REDIS_URL must be a redis:// URL' })
  REDIS_URL = DEFAULT_REDIS_URL;

  /**
   * A Redis Cluster instead of REDIS_URL: seed nodes as `host:port` or `redis://` / `rediss://` URLs,
   * comma-separated; URL entries carry the nodes' shared credentials and TLS (read by
   * `parseRedisClusterNodes`, checked in `loadEnvironment`).
   */
  @IsOptional()
  @IsString()
  REDIS_CLUSTER_NODES?: string;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsString()
  @IsNotEmpty()
  HOST = '0.0.0.0';

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  WORKER_HEALTH_PORT = 3001;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  MAILJET_WEBHOOK_USER?: string;

  @IsOptional()
  @IsString()
  @LongEnough()
  MAILJET_WEBHOOK_PASSWORD?: string;

  @IsOptional()
  @IsString()
  @LongEnough()
  ADMIN_TOKEN?: string;

  /** Bearer token for /metrics on the api and the worker; the admin token when not set. */
  @IsOptional()
  @IsString()
  @LongEnough()
  METRICS_TOKEN?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  SEGMENT_WRITE_KEY?: string;

  /** No user:password@ (it would be logged with the host), query or fragment: the write key is the credential. */
  @Matches(/^https?:\/\/[^/?#@\s]+(\/[^?#\s]*)?$/, {
    message: 'SEGMENT_HOST must be an http(s):// URL without credentials, query or fragment',
  })
  SEGMENT_HOST = 'https://api.segment.io';

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  SEGMENT_MAX_ATTEMPTS = 10;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  SEGMENT_BACKOFF_MS = 1000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10000)
  WORKER_CONCURRENCY = 50;

  @IsString()
  @IsNotEmpty()
  USER_ID_PAYLOAD_KEY = 'userId';

  /** Largest webhook body accepted; larger ones answer 413. */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  WEBHOOK_MAX_BODY_BYTES = 10 * 1024 * 1024;

  /**
   * Time a client has to send a whole request, headers and body, once it started. Sixty seconds
   * carry a 10 MiB callback over 1.5 Mbit/s; raise it for slower links. Sockets on which nothing
   * moves for twice as long are closed too.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(3600000)
  HTTP_REQUEST_TIMEOUT_MS = 60000;

  /** Prefix of every BullMQ key in Redis; lets several deployments (or test runs) share one Redis. */
  @Matches(/^[A-Za-z0-9_-]+$/, { message: 'QUEUE_PREFIX may hold letters, digits, - and _ only' })
  QUEUE_PREFIX = 'bull';

  /**
   * A `queued` event whose job Redis no longer has (Redis restarted without its data, a failover to
   * a replica that was behind, a queue emptied by hand) is queued again once it has waited this long.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  QUEUE_SWEEP_AFTER_SECONDS = 300;

  /** 32 bytes as 64 hex characters: encrypts the secrets stored with sources (write keys, API secrets, webhook passwords). */
  @IsOptional()
  @Matches(/^[0-9a-fA-F]{64}$/, { message: 'SECRETS_KEY must be 32 bytes as 64 hex characters (openssl rand -hex 32)' })
  SECRETS_KEY?: string;

  /** How long a source's previous webhook password keeps working after a rotation; fractions allowed. */
  @Transform(({ value }) => (value === undefined || value === '' ? undefined : /^\d+(\.\d+)?$/.test(String(value)) ? Number(value) : value))
  @IsNumber({}, { message: 'WEBHOOK_PASSWORD_GRACE_HOURS must be a number of hours, e.g. 48 or 0.5' })
  @Min(0)
  @Max(24 * 365)
  WEBHOOK_PASSWORD_GRACE_HOURS = 48;

  /** The base URL Mailjet reaches this service at; callback URLs are built from it. */
  @IsOptional()
  @Matches(/^https?:\/\/[^/@\s]+(\/[^\s]*)?$/, { message: 'PUBLIC_URL must be an http(s):// URL without credentials, e.g. https://bridge.example.com' })
  PUBLIC_URL?: string;

  /** The default source's Mailjet REST API keys (SPEC section 9). */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  MAILJET_API_KEY?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  MAILJET_API_SECRET?: string;

  @Matches(/^https?:\/\/[^@\s]+$/, { message: 'MAILJET_API_URL must be an http(s):// URL without credentials' })
  MAILJET_API_URL = 'https://api.mailjet.com';

  /** How often the api reads each source's Mailjet callbacks to find suspended (dead) ones. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(24 * 60)
  MAILJET_CALLBACK_CHECK_MINUTES = 10;

  /** A backfilled event within this many seconds of a stored one (same source, message, type, URL) is that event. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3600)
  BACKFILL_TIME_TOLERANCE_SECONDS = 2;

  /** Opt-in enrichment from Mailjet's REST API: `subject` (email_subject), `list` (list_name), or both, comma-separated. */
  @Matches(/^((subject|list)(,(subject|list))*)?$/, { message: 'MAILJET_ENRICH must be subject, list or subject,list' })
  MAILJET_ENRICH = '';

  /** Enrichment never holds an event back longer than this. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(60_000)
  MAILJET_ENRICH_TIMEOUT_MS = 2000;

  /**
   * Raw events older than this many days go, a whole month's partition at a time, once every event
   * of the month is that old and none is still `received` or `queued`. Unset: kept forever.
   */
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'EVENT_RETENTION_DAYS must be a whole number of days' })
  @Min(1)
  @Max(36500)
  EVENT_RETENTION_DAYS?: number;

  @IsIn(LOG_LEVELS)
  LOG_LEVEL: LogLevel = 'log';
}

/**
 * REDIS_CLUSTER_NODES must parse; and a REDIS_URL of its own beside it is refused: which one would
 * the processes use, and would its password apply? Credentials and TLS go in the cluster's entries.
 */
function redisClusterProblems(environment: Environment, given: Record<string, unknown>): string[] {
  const parsed = parseRedisClusterNodes(environment.REDIS_CLUSTER_NODES!);
  const problems = typeof parsed === 'string' ? [parsed] : [];
  if ('REDIS_URL' in given && environment.REDIS_URL !== DEFAULT_REDIS_URL) {
    problems.push(
      'REDIS_URL is set beside REDIS_CLUSTER_NODES, which replaces it: unset REDIS_URL (give the cluster\'s credentials and TLS as rediss://user:password@host:port entries of REDIS_CLUSTER_NODES)',
    );
  }
  return problems;
}

export type RequiredVariable = 'MAILJET_WEBHOOK_USER' | 'MAILJET_WEBHOOK_PASSWORD' | 'ADMIN_TOKEN' | 'SEGMENT_WRITE_KEY';

export class ConfigurationError extends Error {}

/**
 * Reads and validates the environment once. The error names the variables only, never their
 * values, because some of them are secrets.
 */
export function loadEnvironment(
  source: Record<string, string | undefined>,
  required: readonly RequiredVariable[],
): Environment {
  const known = Object.keys(new Environment());
  const given = Object.fromEntries(
    Object.entries(source).filter(([key, value]) => known.includes(key) && value !== undefined && value !== ''),
  );
  const environment = plainToInstance(Environment, given);
  const problems = validateSync(environment).map(
    (error) => `${error.property}: ${Object.values(error.constraints ?? {}).join(', ').replace(/ but actual is .*$/, '')}`,
  );
  if (environment.REDIS_CLUSTER_NODES) problems.push(...redisClusterProblems(environment, given));
  for (const name of required) {
    if (!environment[name]) problems.unshift(`${name} is required but not set`);
  }
  if (problems.length) throw new ConfigurationError(`invalid configuration: ${problems.join('; ')}`);
  return environment;
}
