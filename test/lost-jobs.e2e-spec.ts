import { forwardEventJobId } from '@app/queue';
import { sampleWithMessageId } from './fixtures/mailjet-samples';
import { ApiHarness } from './support/api-harness';
import { TestDatabase } from './support/database';
import { SegmentSink } from './support/segment-sink';
import { SEGMENT_WRITE_KEY, testConfig } from './support/test-env';
import { waitFor } from './support/wait-for';
import { WorkerHarness } from './support/worker-harness';

// Redis can lose jobs that PostgreSQL still calls `queued`: a restart without its append-only
// file, a failover to a replica that was behind, or "empty" pressed in the dashboard.
describe('the sweep of lost jobs (api + worker + PostgreSQL + Redis + a local Segment sink)', () => {
  const db = new TestDatabase();
  const sink = new SegmentSink(SEGMENT_WRITE_KEY);
  let api: ApiHarness;
  let worker: WorkerHarness | undefined;

  beforeAll(async () => {
    await db.reset();
    await sink.start();
    api = await ApiHarness.start(testConfig({ SEGMENT_HOST: sink.url, QUEUE_SWEEP_AFTER_SECONDS: '1' }));
  });
  afterAll(async () => {
    await worker?.close();
    await api.close();
    await sink.stop();
    await db.close();
  });

  it('queues again the events whose jobs vanished, leaves the other jobs alone, and forwards each event once', async () => {
    const messageIds = ['1152921505370435101', '1152921505370435102', '1152921505370435103', '1152921505370435104'];
    const body = `[${messageIds.map((id) => sampleWithMessageId('open', id)).join(',')}]`;
    expect((await api.postWebhook(body)).statusCode).toBe(200);
    const ids = (await db.query<{ id: string }>('select id::text from mailjet_events order by mailjet_events.id')).map((row) => row.id);
    expect(ids).toHaveLength(4);
    const kept = await api.queue.getJob(forwardEventJobId(ids[0]));

    // Redis forgets three of the four jobs.
    for (const id of ids.slice(1)) await api.queue.remove(forwardEventJobId(id));
    expect(await api.queue.getJobCountByTypes('waiting', 'prioritized', 'delayed')).toBe(1);

    await waitFor('the sweep to add the three lost jobs again', async () => (await api.queue.getJobCountByTypes('waiting', 'prioritized')) === 4, {
      timeoutMs: 20_000,
    });
    expect((await api.queue.getJob(forwardEventJobId(ids[0])))?.timestamp).toBe(kept?.timestamp);

    worker = await WorkerHarness.start(api.config);
    await waitFor('all four to be forwarded', async () => (await db.count("status = 'forwarded'")) === 4);
    expect(sink.accepted.map((call) => call.properties.email_id).sort()).toEqual(messageIds);
  });
});
