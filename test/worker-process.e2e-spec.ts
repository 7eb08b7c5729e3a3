import { randomBytes } from 'node:crypto';
import { EXIT_DEADLINE_MS } from '../apps/worker/src/exit-deadline';
import { ProductProcess } from './faults/product-process';
import { TestDatabase } from './support/database';
import { SECRETS_KEY, SEGMENT_WRITE_KEY, TEST_DATABASE_URL, TEST_REDIS_URL } from './support/test-env';

/** The built worker as the image runs it, stopped as Docker and Kubernetes stop it (SIGTERM). */
describe('the worker process on SIGTERM', () => {
  const db = new TestDatabase();
  const env = (redisUrl: string) => ({
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: redisUrl,
    SEGMENT_WRITE_KEY,
    SECRETS_KEY,
    QUEUE_PREFIX: `test-${randomBytes(4).toString('hex')}`,
    LOG_LEVEL: 'log',
  });

  beforeAll(() => db.reset());
  afterAll(() => db.close());

  it('ends at once when its stores are there', async () => {
    const worker = await ProductProcess.start('worker', env(TEST_REDIS_URL));
    const stopping = Date.now();
    const exit = await worker.stop('SIGTERM');
    // Nest re-raises the signal once its shutdown is done: the process ends by it.
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(Date.now() - stopping).toBeLessThan(EXIT_DEADLINE_MS);
    expect(worker.log.join('')).not.toContain('the shutdown did not finish');
  });

  it('ends within its exit deadline, saying so, when Redis was never reachable (BullMQ never settles then)', async () => {
    const worker = await ProductProcess.start('worker', env('redis://127.0.0.1:1'));
    const stopping = Date.now();
    const exit = await worker.stop('SIGTERM');
    expect(exit.code).toBe(1);
    expect(Date.now() - stopping).toBeGreaterThanOrEqual(EXIT_DEADLINE_MS);
    // Well before Kubernetes' SIGKILL (terminationGracePeriodSeconds 60, test/kubernetes.spec.ts).
    expect(Date.now() - stopping).toBeLessThan(EXIT_DEADLINE_MS + 10_000);
    expect(worker.log.join('')).toContain(`the shutdown did not finish within ${EXIT_DEADLINE_MS} ms of SIGTERM; exiting`);
  }, EXIT_DEADLINE_MS + 60_000);
});
