import { sampleWithMessageId } from './fixtures/mailjet-samples';
import { TestDatabase } from './support/database';
import { PipelineHarness } from './support/pipeline-harness';
import { RedisCluster, startRedisCluster } from './support/redis-cluster';
import { onRedisCluster } from './support/test-env';
import { waitFor } from './support/wait-for';

const EVENTS = 600;
const PER_CALLBACK = 20;
// Mailjet's message ids are 17 digits or more; each event here has its own.
const FIRST_MESSAGE_ID = 1152921505370400000n;

/**
 * The api and a worker on a Redis Cluster of three masters, each with a replica. The master that
 * serves the queue's slot (all of the queue's keys: the prefix is a hash tag) is killed in the
 * middle of a load; its replica is promoted. Nothing may be lost or sent twice: callbacks that
 * could not reach Redis leave `received` rows that the recovery loop queues, and jobs the dead
 * master took with it (replication is asynchronous) are queued again by the sweep.
 */
describe('on a Redis Cluster whose master fails over in the middle of a load', () => {
  const db = new TestDatabase();
  let cluster: RedisCluster;
  let pipeline: PipelineHarness;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 });
    // Four jobs at a time, each held 200 ms by the sink: the load outlasts the failover.
    pipeline = await PipelineHarness.start(db, {
      QUEUE_SWEEP_AFTER_SECONDS: '3',
      SEGMENT_BACKOFF_MS: '100',
      WORKER_CONCURRENCY: '4',
      ...onRedisCluster(cluster),
    });
  }, 60_000);
  afterAll(async () => {
    await pipeline?.close();
    await cluster?.stop();
    await db.close();
  });

  it('forwards every event exactly once, and health says unready while the slot has no master', async () => {
    const { api, worker, sink } = pipeline;
    sink.latencyMs = 200;
    const metaKey = api.queue.toKey('meta');
    const master = await cluster.masterOf(metaKey);
    expect((await api.get('/health/ready')).statusCode).toBe(200);

    const callbacks = EVENTS / PER_CALLBACK;
    const statuses: number[] = [];
    const post = async (index: number) => {
      const ids = Array.from({ length: PER_CALLBACK }, (_, i) => String(FIRST_MESSAGE_ID + BigInt(index * PER_CALLBACK + i)));
      statuses.push((await api.postWebhook(`[${ids.map((id) => sampleWithMessageId('open', id)).join(',')}]`)).statusCode);
    };
    for (let index = 0; index < callbacks / 2; index++) await post(index);
    await waitFor('the worker to be forwarding', () => sink.accepted.length > 0);

    // Mid-load: jobs of the first half still waiting or active.
    expect(sink.accepted.length).toBeLessThan(EVENTS / 2);
    cluster.killMaster(master);
    // Callbacks go on during the failover: stored in PostgreSQL whether Redis takes their jobs or not.
    const secondHalf = (async () => {
      for (let index = callbacks / 2; index < callbacks; index++) await post(index);
    })();
    // Unready while nobody serves the slot (cluster-node-timeout, 1 s, then an election), ready after.
    const unready = await waitFor('the api to say Redis is down', async () => {
      const answer = await api.get('/health/ready');
      return answer.statusCode === 503 ? answer.json() : undefined;
    });
    expect(unready.checks.redis.status).toBe('down');
    const promoted = await cluster.waitForFailover(metaKey, master);
    expect(promoted).not.toBe(master);
    await waitFor('the api and the worker to say ready again', async () =>
      (await api.get('/health/ready')).statusCode === 200 && (await worker.get('/health/ready')).statusCode === 200,
    );
    await secondHalf;
    expect(statuses).toEqual(Array(callbacks).fill(200));

    const stored = await db.settled(EVENTS, 120_000);
    expect(stored.filter((row) => row.status !== 'forwarded').map((row) => [row.id, row.status, row.last_error])).toEqual([]);
    const sent = sink.accepted.map((call) => call.messageId);
    expect(new Set(sent).size).toBe(sent.length);
    expect(sent.sort()).toEqual(stored.map((row) => row.segment_message_id).sort());
    expect(new Set(sink.accepted.map((call) => call.properties.email_id)).size).toBe(EVENTS);
  }, 180_000);
});
