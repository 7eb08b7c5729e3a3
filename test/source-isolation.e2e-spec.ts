import { TestDatabase } from './support/database';
import { PipelineHarness } from './support/pipeline-harness';
import { SegmentSink } from './support/segment-sink';
import { basicAuth } from './support/test-env';
import { waitFor } from './support/wait-for';

const OUTAGE_MS = 60_000;
const POST_EVERY_MS = 500;
// B's events normally reach their sink within a few tens of milliseconds. Without per-destination
// gates, A's failing jobs (1.5 s each, retried every few hundred ms) take every one of the
// worker's 4 slots, and B's latency grows with the outage, to tens of seconds.
const B_LATENCY_BOUND_MS = 5_000;

interface CreatedSource {
  slug: string;
  webhook: { user: string; password: string };
}

describe("one destination's outage never delays another source's events (api + worker + PostgreSQL + Redis + local sinks)", () => {
  const db = new TestDatabase();
  let pipeline: PipelineHarness;
  let sinkA: SegmentSink;
  let sinkB: SegmentSink;

  beforeAll(async () => {
    pipeline = await PipelineHarness.start(db, { WORKER_CONCURRENCY: '4', SEGMENT_BACKOFF_MS: '200', SEGMENT_MAX_ATTEMPTS: '20' });
    [sinkA, sinkB] = [await new SegmentSink('key-a').start(), await new SegmentSink('key-b').start()];
  });
  afterAll(async () => {
    await pipeline.close();
    await sinkA.stop();
    await sinkB.stop();
    await db.close();
  });

  async function createSource(name: string, sink: SegmentSink, writeKey: string): Promise<CreatedSource> {
    const response = await pipeline.api.admin('POST', '/admin/sources', { name, destination: { preset: 'custom', host: sink.url, writeKey } });
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  it("source A's sink answers 500, slowly, for a minute: B's events keep flowing at full speed, and A's all arrive once, afterwards", async () => {
    const a = await createSource('A', sinkA, 'key-a');
    const b = await createSource('B', sinkB, 'key-b');
    sinkA.standingAnswer = { status: 500, body: '{"error":"outage"}' };
    sinkA.latencyMs = 1500;

    const postedB = new Map<string, number>();
    const start = Date.now();
    let n = 0;
    while (Date.now() - start < OUTAGE_MS) {
      n++;
      const body = (name: string) => `{"event":"open","time":1433103519,"MessageID":${19421777396190490n + BigInt(n)},"email":"${name}@example.com"}`;
      const url = (source: CreatedSource) => `/webhooks/mailjet/${source.slug}`;
      const auth = (source: CreatedSource) => basicAuth(source.webhook.user, source.webhook.password);
      expect((await pipeline.api.postWebhook(body(`a-${n}`), { url: url(a), authorization: auth(a) })).statusCode).toBe(200);
      const postedAt = Date.now();
      expect((await pipeline.api.postWebhook(body(`b-${n}`), { url: url(b), authorization: auth(b) })).statusCode).toBe(200);
      postedB.set(`b-${n}@example.com`, postedAt);
      // The next pair when it is due: paced by the clock, not a fixed sleep between checks.
      await waitFor('the next posting time', () => Date.now() - start >= n * POST_EVERY_MS, { intervalMs: 10 });
    }
    // B's events were forwarded during A's outage, each within the bound.
    await waitFor("every B event to reach B's sink", () => sinkB.accepted.length >= postedB.size, { timeoutMs: B_LATENCY_BOUND_MS });
    const latencies = sinkB.batches
      .filter((batch) => batch.status < 300)
      .flatMap((batch) => batch.batch.map((call) => batch.receivedAt - postedB.get((call.context as { traits: { email: string } }).traits.email)!));
    expect(latencies).toHaveLength(postedB.size);
    expect(Math.max(...latencies)).toBeLessThan(B_LATENCY_BOUND_MS);
    // A's outage was real all along: its sink answered 500 from first to last, and accepted nothing.
    expect(sinkA.accepted).toHaveLength(0);
    expect(sinkA.batches.length).toBeGreaterThan(5);
    expect(sinkA.batches[sinkA.batches.length - 1].receivedAt - start).toBeGreaterThan(OUTAGE_MS - 10_000);

    // A comes back: each of its events arrives, once.
    sinkA.standingAnswer = undefined;
    sinkA.latencyMs = 0;
    // Their jobs come back when the gate's backoff (at most 32 x 200 ms) and their own retry delays end.
    const events = await db.settled(2 * n, 60_000);
    expect(events.every((event) => event.status === 'forwarded')).toBe(true);
    const emailsA = sinkA.accepted.map((call) => (call.context as { traits: { email: string } }).traits.email);
    expect(new Set(emailsA).size).toBe(n);
    expect(emailsA).toHaveLength(n);
  }, 150_000);
});
