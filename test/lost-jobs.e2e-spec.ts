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

  it('queues again the events whose job vanished, leaves the other jobs alone, and forwards each event once', async () => {
    const lostIds = ['1152921505370435101', '1152921505370435102', '1152921505370435103'];
    const keptId = '1152921505370435104';
    expect((await api.postWebhook(`[${lostIds.map((id) => sampleWithMessageId('open', id)).join(',')}]`)).statusCode).toBe(200);
    expect((await api.postWebhook(sampleWithMessageId('open', keptId))).statusCode).toBe(200);
    const events = await db.events();
    const [lostJob, keptJob] = [events[0].job_id!, events[3].job_id!];
    expect(events.map((event) => event.job_id)).toEqual([lostJob, lostJob, lostJob, keptJob]);
    const kept = await api.queue.getJob(keptJob);

    // Redis forgets the job of the first callback.
    await api.queue.remove(lostJob);
    expect(await api.queuedEventIds()).toEqual([events[3].id]);

    const eventIds = events.map((event) => event.id);
    await waitFor('the sweep to queue the three events again', async () => (await api.queuedEventIds()).join() === eventIds.join(), {
      timeoutMs: 20_000,
    });
    expect((await api.queue.getJob(keptJob))?.timestamp).toBe(kept?.timestamp);
    const moved = await db.events();
    expect(moved[0].job_id).toMatch(/^sweep-\d+-s1$/);
    expect(moved[3].job_id).toBe(keptJob);

    worker = await WorkerHarness.start(api.config);
    await db.settled(4);
    expect(sink.accepted.map((call) => call.properties.email_id).sort()).toEqual([...lostIds, keptId]);
  });
});
