import { FORWARD_EVENTS_JOB, forwardEventsJobOptions } from '@app/queue';
import { MAX_REASON_LENGTH } from '@app/common';
import type { ApiHarness } from './support/api-harness';
import { TestDatabase } from './support/database';
import { PipelineHarness } from './support/pipeline-harness';
import type { SegmentSink } from './support/segment-sink';
import { waitFor } from './support/wait-for';

// Values a caller controls, and what they may cost: a reason, a counter row, a worker's retries.
describe('bounded inputs (api + worker + PostgreSQL + Redis + a local Segment sink)', () => {
  const db = new TestDatabase();
  let pipeline: PipelineHarness;
  let api: ApiHarness;
  let sink: SegmentSink;
  const event = (fields: Record<string, unknown>) => ({ event: 'open', time: 1700000000, MessageID: 19421777, email: 'a@example.com', ...fields });

  beforeAll(async () => {
    pipeline = await PipelineHarness.start(db, { SEGMENT_BACKOFF_MS: '20', SEGMENT_MAX_ATTEMPTS: '10' });
    ({ api, sink } = pipeline);
  });
  beforeEach(() => pipeline.reset(db));
  afterAll(async () => {
    await pipeline.close();
    await db.close();
  });

  it('stores an event whose `event` is a 5 MB object with a short reason, and lists such events in a small answer', async () => {
    const huge = { nested: 'x'.repeat(5_000_000) };
    for (let i = 0; i < 2; i++) {
      expect((await api.postWebhook(JSON.stringify(event({ event: huge, MessageID: 100 + i })))).statusCode).toBe(200);
    }
    const reasons = await db.query<{ length: number }>("select length(last_error) as length from mailjet_events where status = 'invalid'");
    expect(reasons).toHaveLength(2);
    for (const { length } of reasons) expect(length).toBeLessThanOrEqual(MAX_REASON_LENGTH);

    const listed = await api.admin('GET', '/admin/events?status=invalid');
    expect(listed.statusCode).toBe(200);
    expect(listed.json().items).toHaveLength(2);
    expect(listed.body.length).toBeLessThan(10_000);
  });

  it('counts thousands of distinct unknown event types under one bucket', async () => {
    const junk = Array.from({ length: 2000 }, (_, i) => event({ event: `junk-${i}`, MessageID: 1000 + i }));
    expect((await api.postWebhook(JSON.stringify([...junk, event({})]))).json()).toEqual({ received: 2001, accepted: 1, invalid: 2000 });

    const status = (await api.admin('GET', '/admin/status')).json();
    expect(status.events.byType).toEqual({ '(unknown)': 2000, open: 1 });
    const [{ rows }] = await db.query<{ rows: number }>("select count(*)::int as rows from event_counts where status = 'invalid'");
    expect(rows).toBe(1);
  });

  it('marks an email longer than an address can be invalid instead of cutting it short and forwarding it', async () => {
    const email = `${'a'.repeat(300)}@example.com`;
    expect((await api.postWebhook(JSON.stringify([event({ email }), event({ MessageID: 7 })]))).json()).toEqual({ received: 2, accepted: 1, invalid: 1 });

    await waitFor('the valid event to be forwarded', async () => (await db.count("status = 'forwarded'")) === 1);
    const [invalid] = await db.query<{ last_error: string }>("select last_error from mailjet_events where status = 'invalid'");
    expect(invalid.last_error).toContain('"email" is 312 characters long');
    expect(sink.accepted.map((call) => call.properties.email_id)).toEqual(['7']);
  });

  it('stores a grouped body whose one event has an email of 1,200 CJK characters: that one invalid, the other queued', async () => {
    const email = `${'中'.repeat(1200)}@b.com`;
    const response = await api.postWebhook(JSON.stringify([event({ MessageID: 1200 }), event({ MessageID: 1201, email })]));
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ received: 2, accepted: 1, invalid: 1 });
  });

  it('stores a grouped body whose one event nests 40 levels deep: that one invalid, the other queued', async () => {
    const deep = `{"event":"open","time":1700000000,"MessageID":1301,"email":"a@b.c","x":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}`;
    const response = await api.postWebhook(`[${JSON.stringify(event({ MessageID: 1300 }))},${deep}]`);
    expect(response.json()).toEqual({ received: 2, accepted: 1, invalid: 1 });
    const [, stored] = await db.events();
    expect(stored).toMatchObject({ status: 'invalid', last_error: 'the event nests deeper than 32 levels; no Mailjet event does', payload: deep });
  });

  it('fails at once, with the reason, a stored event whose Payload nests 5,000 levels deep, and still shows it', async () => {
    // Stored as a version without the ingest check would have stored it: queued, with its job.
    const payload = JSON.stringify(event({ Payload: `${'['.repeat(5000)}${']'.repeat(5000)}` }));
    const [{ id }] = await db.query<{ id: string }>(
      `insert into mailjet_events (payload, event_type, event_time, email, message_id, dedupe_key, status, queued_at, job_id)
       values ($1::json, 'open', to_timestamp(1700000000), 'a@example.com', '19421777', '19421777:open:1700000000', 'queued', now(), 'deep-1')
       returning id::text`,
      [payload],
    );
    await api.queue.add(FORWARD_EVENTS_JOB, { events: id, count: 1 }, { ...forwardEventsJobOptions(api.config.retryPolicy), jobId: 'deep-1' });

    const failed = await waitFor('the event to fail', async () => {
      const [row] = await db.query<{ attempts: number; last_error: string }>(
        "select attempts, last_error from mailjet_events where id = $1 and status = 'failed'",
        [id],
      );
      return row;
    });
    expect(failed.attempts).toBe(1);
    expect(failed.last_error).toContain('"Payload" nests deeper than 32 levels');
    expect(sink.batches).toHaveLength(0);

    const detail = await api.admin('GET', `/admin/events/${id}`);
    expect(detail.statusCode).toBe(200);
    expect(detail.json()).toMatchObject({ status: 'failed', segmentCall: null, mappingError: expect.stringContaining('nests deeper') });
  });
});
