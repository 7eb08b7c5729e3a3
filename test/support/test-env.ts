import { randomBytes } from 'node:crypto';
import { AppConfig, configFromEnvironment } from '@app/config';

/** Tests run against their own database on the local server, never the one `npm run migrate` sets up. */
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@localhost:5432/mailjet_segment_test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://localhost:6379';

export const WEBHOOK_USER = 'mailjet';
// Secrets the operator chooses must be at least 16 characters (MIN_SECRET_LENGTH).
export const WEBHOOK_PASSWORD = 'p@ss:wörd-of-the-test-suite';
export const ADMIN_TOKEN = 'test-admin-token';
export const SEGMENT_WRITE_KEY = 'test-write-key';
/** Encrypts the secrets of the sources tests create (a fixed key: never a real one). */
export const SECRETS_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

/** A configuration for one test file: its own BullMQ prefix, so that files never share jobs. */
export function testConfig(overrides: Record<string, string> = {}): AppConfig {
  return configFromEnvironment(['MAILJET_WEBHOOK_USER', 'MAILJET_WEBHOOK_PASSWORD', 'ADMIN_TOKEN'], {
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    MAILJET_WEBHOOK_USER: WEBHOOK_USER,
    MAILJET_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD,
    ADMIN_TOKEN,
    SEGMENT_WRITE_KEY,
    SECRETS_KEY,
    QUEUE_PREFIX: `test-${randomBytes(4).toString('hex')}`,
    LOG_LEVEL: 'error',
    ...overrides,
  });
}

/** What makes `testConfig` use a Redis Cluster of the test's own instead of TEST_REDIS_URL. */
export function onRedisCluster(cluster: { clusterNodesVariable: string }): Record<string, string> {
  return { REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.clusterNodesVariable };
}

export function basicAuth(user = WEBHOOK_USER, password = WEBHOOK_PASSWORD): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}
