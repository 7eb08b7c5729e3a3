import { MAILJET_EVENT_TYPES } from '@app/mailjet';
import { segmentMessageIdOf } from '@app/segment';
import { GROUPED_SENT_SAMPLE, MAILJET_SAMPLES, SAMPLE_MESSAGE_IDS, sampleWithMessageId } from './fixtures/mailjet-samples';
import type { ApiHarness } from './support/api-harness';
import { TestDatabase } from './support/database';
import { PipelineHarness } from './support/pipeline-harness';
import { RedisCluster, startRedisCluster } from './support/redis-cluster';
import type { SegmentSink } from './support/segment-sink';
import { onRedisCluster } from './support/test-env';
import type { WorkerHarness } from './support/worker-harness';

const SEGMENT_EVENTS = {
  sent: 'Email Delivered',
  open: 'Email Opened',
  click: 'Email Link Clicked',
  bounce: 'Email Bounced',
  blocked: 'Email Blocked',
  spam: 'Email Marked as Spam',
  unsub: 'Email Unsubscribed',
};

const db = new TestDatabase();
afterAll(() => db.close());

// The same suite on one Redis and on a Redis Cluster of three masters (with a password), where
// BullMQ's keys carry a hash tag and every client is an ioredis Cluster.
describe.each(['one Redis', 'a Redis Cluster'] as const)('forwarding to Segment (api + worker + PostgreSQL + %s + a local Segment sink)', (redis) => {
  let cluster: RedisCluster | undefined;
  let pipeline: PipelineHarness | undefined;
  let api: ApiHarness;
  let worker: WorkerHarness;
  let sink: SegmentSink;

  beforeAll(async () => {
    if (redis === 'a Redis Cluster') cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, password: 'cluster:pass/word@test' });
    pipeline = await PipelineHarness.start(db, { SEGMENT_BACKOFF_MS: '50', SEGMENT_MAX_ATTEMPTS: '5', ...(cluster ? onRedisCluster(cluster) : {}) });
    ({ api, worker, sink } = pipeline);
  }, 60_000);
  beforeEach(() => pipeline!.reset(db));
  afterAll(async () => {
    await pipeline?.close();
    await cluster?.stop();
  });

  it('runs on the Redis it is meant to', async () => {
    const prefix = pipeline!.api.config.queuePrefix;
    expect(api.queue.opts.prefix).toBe(cluster ? `{${prefix}}` : prefix);
    await api.postWebhook(sampleWithMessageId('open', '1000'));
    const [row] = await db.settled(1);
    const key = `${api.queue.opts.prefix}:${api.queue.name}:${row.job_id}`;
    expect(await api.queue.getJobState(row.job_id!)).toBe('completed');
    // On the cluster, the job's hash is on the master of the prefix's slot.
    if (cluster) expect((await cluster.cli(await cluster.masterOf(key), 'exists', key)).trim()).toBe('1');
  });

  it('forwards every type once, with the expected track call', async () => {
    for (const type of MAILJET_EVENT_TYPES) expect((await api.postWebhook(MAILJET_SAMPLES[type])).statusCode).toBe(200);
    const stored = await db.settled(7);
    expect(stored.map((row) => [row.status, row.attempts])).toEqual(Array(7).fill(['forwarded', 1]));
    const accepted = sink.accepted;
    expect(accepted).toHaveLength(7);
    for (const [index, type] of MAILJET_EVENT_TYPES.entries()) {
      const call = accepted.find((c) => c.event === SEGMENT_EVENTS[type])!;
      const sample = JSON.parse(MAILJET_SAMPLES[type]);
      expect(call).toMatchObject({
        type: 'track',
        event: SEGMENT_EVENTS[type],
        anonymousId: sample.email,
        messageId: segmentMessageIdOf(stored[index].dedupe_key!),
        timestamp: new Date(sample.time * 1000).toISOString(),
        properties: { email_id: SAMPLE_MESSAGE_IDS[type], message_guid: sample.Message_GUID, custom_id: 'helloworld' },
        context: { integration: { name: 'mailjet' }, traits: { email: sample.email } },
      });
      expect(call.userId).toBeUndefined();
      expect(stored[index].segment_message_id).toBe(call.messageId);
    }
  });

  it('forwards the same grouped body posted three times concurrently once, and marks the others duplicate', async () => {
    const answers = await Promise.all([1, 2, 3].map(() => api.postWebhook(GROUPED_SENT_SAMPLE)));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200]);
    const stored = await db.settled(6);
    const byKey = new Map<string | null, string[]>();
    for (const row of stored) byKey.set(row.dedupe_key, [...(byKey.get(row.dedupe_key) ?? []), row.status]);
    expect(byKey.size).toBe(2);
    for (const statuses of byKey.values()) expect(statuses.sort()).toEqual(['duplicate', 'duplicate', 'forwarded']);
    expect(sink.accepted.map((call) => call.properties.email_id).sort()).toEqual(['19421777835146490', '19421777835146491']);
  });

  it('retries a 500 with backoff: three failures, then delivered on attempt 4', async () => {
    sink.answerNext(3, { status: 500, body: '{"error":"internal"}' });
    await api.postWebhook(sampleWithMessageId('open', '1001'));
    const [row] = await db.settled(1);
    expect(row).toMatchObject({ status: 'forwarded', attempts: 4, last_error: null });
    expect(sink.batches.map((b) => b.status)).toEqual([500, 500, 500, 200]);
    expect(sink.accepted).toHaveLength(1);
  });

  it('fails a 400 at once with the reason, and sends no more requests', async () => {
    sink.answerNext(1, { status: 400, body: '{"error":"bad event"}' });
    await api.postWebhook(sampleWithMessageId('click', '1002'));
    const [row] = await db.settled(1);
    expect(row).toMatchObject({ status: 'failed', attempts: 1 });
    expect(row.last_error).toBe('Segment answered 400: {"error":"bad event"}');
    // The job is failed for good: no retry is scheduled, so no later request can come.
    expect(await api.queue.getJobState(row.job_id!)).toBe('failed');
    expect(sink.requestTimes).toHaveLength(1);
  });

  it('fails one bad event of a grouped body alone, with its reason, and forwards the others once', async () => {
    const ids = ['1152921505370435201', '1152921505370435202', '1152921505370435203', '1152921505370435204', '1152921505370435205'];
    const bad = ids[2];
    // A destination that refuses a whole request for one event in it (400): which one, it does not say.
    sink.refuseBatchesWith = (event) => event.properties.email_id === bad;
    expect((await api.postWebhook(`[${ids.map((id) => sampleWithMessageId('open', id)).join(',')}]`)).statusCode).toBe(200);

    const stored = await db.settled(5);
    expect(new Set(stored.map((row) => row.job_id)).size).toBe(1);
    expect(stored.map((row) => [row.message_id, row.status, row.attempts])).toEqual(
      ids.map((id) => [id, id === bad ? 'failed' : 'forwarded', 1]),
    );
    expect(stored[2].last_error).toBe('Segment answered 400: {"error":"invalid event in batch"}');
    expect(sink.accepted.map((call) => call.properties.email_id).sort()).toEqual(ids.filter((id) => id !== bad));
    // The refused request carried all five; then each went alone: four accepted, the bad one refused.
    expect(sink.batches.map((batch) => batch.batch.length).sort()).toEqual([1, 1, 1, 1, 1, 5]);
    // Its job failed for good, saying why, so that the dashboard shows it.
    const job = await api.queue.getJob(stored[0].job_id!);
    expect(await job!.getState()).toBe('failed');
    expect(job!.failedReason).toContain('1 of 5 event(s) failed: Segment answered 400');
  });

  it('retries a group whose request failed, sending again only what is not forwarded yet', async () => {
    const ids = ['1152921505370435301', '1152921505370435302', '1152921505370435303'];
    sink.answerNext(1, { status: 503, body: 'busy' });
    expect((await api.postWebhook(`[${ids.map((id) => sampleWithMessageId('click', id)).join(',')}]`)).statusCode).toBe(200);

    const stored = await db.settled(3);
    expect(stored.map((row) => [row.status, row.attempts, row.last_error])).toEqual(Array(3).fill(['forwarded', 2, null]));
    expect(sink.batches.map((batch) => [batch.status, batch.batch.length])).toEqual([[503, 3], [200, 3]]);
    expect(sink.accepted).toHaveLength(3);
  });

  it('honours Retry-After on a 429: no request before it, then delivered', async () => {
    sink.answerNext(1, { status: 429, headers: { 'Retry-After': '2' } });
    await api.postWebhook(sampleWithMessageId('unsub', '1003'));
    const [row] = await db.settled(1);
    expect(row).toMatchObject({ status: 'forwarded', attempts: 2 });
    expect(sink.requestTimes).toHaveLength(2);
    expect(sink.requestTimes[1] - sink.requestTimes[0]).toBeGreaterThanOrEqual(2000);
  });

  it('fails after the last attempt with the last error', async () => {
    sink.answerNext(5, { status: 503, body: 'unavailable' });
    await api.postWebhook(sampleWithMessageId('bounce', '1004'));
    const [row] = await db.settled(1);
    expect(row).toMatchObject({ status: 'failed', attempts: 5, last_error: 'Segment answered 503: unavailable' });
    expect(sink.accepted).toHaveLength(0);
  });

  it('spends an attempt on a Segment that refuses connections, and fails after the last one', async () => {
    await sink.refuseConnections();
    try {
      await api.postWebhook(sampleWithMessageId('spam', '1005'));
      const [row] = await db.settled(1);
      expect(row).toMatchObject({ status: 'failed', attempts: 5 });
      expect(row.last_error).toMatch(/^Segment unreachable: /);
    } finally {
      await sink.start();
    }
  });

  it('uses the identity table for a recipient whose Payload names no userId', async () => {
    await db.query("insert into identities (email, user_id) values ('api@mailjet.com', 'user-42')");
    await api.postWebhook(sampleWithMessageId('open', '1005'));
    await db.settled(1);
    expect(sink.accepted[0]).toMatchObject({ userId: 'user-42', context: { traits: { email: 'api@mailjet.com' } } });
    expect(sink.accepted[0].anonymousId).toBeUndefined();
  });

  it('answers its health routes', async () => {
    expect((await worker.get('/health/live')).statusCode).toBe(200);
    expect((await worker.get('/health/ready')).json().checks).toEqual({ postgres: { status: 'up' }, redis: { status: 'up' }, sources: { status: 'up' } });
  });
});
