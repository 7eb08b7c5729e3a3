import { Analytics } from '@segment/analytics-node';
import { SegmentClient, SegmentDeliveryError, SegmentTrackCall } from '@app/segment';
import { SegmentSink, SinkAnswer } from './support/segment-sink';

/**
 * The contract between SegmentClient and @segment/analytics-node (pinned in package.json), over
 * real HTTP to the local sink. The client leans on the SDK for batching and for three things an
 * upgrade could change: with `maxRetries: 0` a request that throws is not retried; the error our
 * HTTP client threw reaches the `'error'` event as it was thrown; `'track'` fires per delivered
 * call. Each refusal below is scripted once and followed by 200s, so a retry behind BullMQ's back
 * would turn the expected rejection into a delivery, and shows in the sink's request count.
 */
describe('SegmentClient against a Segment-compatible sink (the SDK contract)', () => {
  const WRITE_KEY = 'contract-write-key';
  const REQUEST_TIMEOUT_MS = 400;
  let sink: SegmentSink;
  const clients: SegmentClient[] = [];
  let sequence = 0;

  const clientFor = (host: string, writeKey = WRITE_KEY) => {
    const client = new SegmentClient({ writeKey, host, maxBatchSize: 100, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    clients.push(client);
    return client;
  };
  const trackCall = (properties: SegmentTrackCall['properties'] = {}): SegmentTrackCall => ({
    event: 'Email Opened',
    messageId: `contract-${process.pid}-${++sequence}`,
    timestamp: new Date(1_700_000_000_000).toISOString(),
    anonymousId: 'reader@example.com',
    properties: { email_id: '19421777835146491', ...properties },
    context: { integration: { name: 'mailjet', version: '0.1.0' }, traits: { email: 'reader@example.com' } },
  });
  /** What track() rejected with; fails the test if it resolved. */
  const refusalOf = async (delivery: Promise<void>): Promise<SegmentDeliveryError> => {
    const outcome = await delivery.then(
      () => new Error('track() resolved: Segment was expected to refuse the call'),
      (error: unknown) => error,
    );
    if (!(outcome instanceof SegmentDeliveryError)) throw outcome;
    return outcome;
  };
  const refusedOnce = async (answer: SinkAnswer) => {
    sink.answerNext(1, answer);
    return refusalOf(clientFor(sink.url).track(trackCall()));
  };

  beforeAll(async () => {
    sink = await new SegmentSink(WRITE_KEY).start();
  });
  beforeEach(() => sink.reset());
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close(1000)));
  });
  afterAll(async () => {
    await sink.stop();
  });

  it('resolves each call of a batch once Segment accepted the batch', async () => {
    const calls = [trackCall(), trackCall(), trackCall()];
    const client = clientFor(sink.url);
    await Promise.all(calls.map((call) => client.track(call)));
    expect(sink.requests).toBe(1);
    expect(sink.accepted.map((event) => event.messageId)).toEqual(calls.map((call) => call.messageId));
  });

  it('rejects every call of a refused batch with the same answer', async () => {
    sink.answerNext(1, { status: 503, body: 'unavailable' });
    const client = clientFor(sink.url);
    const refusals = await Promise.all([refusalOf(client.track(trackCall())), refusalOf(client.track(trackCall()))]);
    expect(refusals.map((error) => [error.status, error.retryable])).toEqual([
      [503, true],
      [503, true],
    ]);
    expect(sink.requests).toBe(1);
  });

  it.each([
    { status: 400, body: '{"error":"bad event"}', retryable: false },
    { status: 413, body: 'Request Entity Too Large', retryable: false },
    { status: 422, body: '{"error":"unprocessable"}', retryable: false },
    { status: 408, body: '', retryable: true },
    { status: 500, body: '{"error":"internal"}', retryable: true },
    { status: 501, body: 'not implemented', retryable: false },
    { status: 503, body: 'unavailable', retryable: true },
  ])('$status: retryable $retryable, with the status and the body as the reason', async ({ status, body, retryable }) => {
    const error = await refusedOnce({ status, body });
    expect(error).toMatchObject({ status, retryable, retryAfterMs: undefined });
    expect(error.message).toBe(body ? `Segment answered ${status}: ${body}` : `Segment answered ${status}`);
    expect(sink.requests).toBe(1);
  });

  it('401 (a wrong write key): retryable, so that the event waits for the operator to fix the key', async () => {
    const error = await refusalOf(clientFor(sink.url, 'revoked-write-key').track(trackCall()));
    expect(error).toMatchObject({ status: 401, retryable: true });
    expect(error.message).toBe('Segment answered 401: {"error":"invalid write key"}');
    expect(sink.requests).toBe(1);
  });

  it('429 with Retry-After in seconds: retryable after that long; the SDK neither retries nor holds back the next batch', async () => {
    sink.answerNext(1, { status: 429, headers: { 'Retry-After': '120' }, body: '{"error":"rate limited"}' });
    const client = clientFor(sink.url);
    const error = await refusalOf(client.track(trackCall()));
    expect(error).toMatchObject({ status: 429, retryable: true, retryAfterMs: 120_000 });
    expect(sink.requests).toBe(1);
    // Shown a real 429, the SDK would wait the 120 s out before any other request of this client.
    await client.track(trackCall());
    expect(sink.requests).toBe(2);
  });

  it('429 with Retry-After as an HTTP-date: retryable until that date', async () => {
    const retryAt = new Date(Date.now() + 30_000);
    const error = await refusedOnce({ status: 429, headers: { 'Retry-After': retryAt.toUTCString() } });
    expect(error).toMatchObject({ status: 429, retryable: true });
    // The date has whole seconds: up to 1 s earlier than retryAt, less the time the test took.
    expect(error.retryAfterMs).toBeGreaterThan(25_000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(30_000);
    expect(sink.requests).toBe(1);
  });

  it('connection refused: retryable, "Segment unreachable" with the cause', async () => {
    const closed = await new SegmentSink(WRITE_KEY).start();
    await closed.refuseConnections();
    const error = await refusalOf(clientFor(closed.url).track(trackCall()));
    expect(error).toMatchObject({ retryable: true, status: undefined });
    expect(error.message).toBe(`Segment unreachable: connect ECONNREFUSED 127.0.0.1:${closed.port}`);
  });

  it('no answer: retryable once the request timeout has passed', async () => {
    const started = Date.now();
    const error = await refusedOnce({ hang: true });
    expect(error).toMatchObject({ retryable: true, status: undefined });
    expect(error.message).toBe(`Segment unreachable: no answer within ${REQUEST_TIMEOUT_MS} ms`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 5);
    expect(sink.requests).toBe(1);
  });

  it('keeps a reason to one short line: a long body is cut and the write key is masked', async () => {
    const body = `{"error":"bad\nrequest","echo":"${WRITE_KEY}","rest":"${'x'.repeat(1_000_000)}"}`;
    const error = await refusedOnce({ status: 400, body });
    expect(error.message).toMatch(/^Segment answered 400: \{"error":"bad request","echo":"\*\*\*","rest":"x+\.\.\.$/);
    expect(error.message.length).toBeLessThanOrEqual('Segment answered 400: '.length + 303);
  });

  it('masks the write key as it was sent, in a body that echoes the request headers', async () => {
    const sent = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;
    const error = await refusedOnce({ status: 400, body: JSON.stringify({ error: 'bad', headers: { authorization: sent } }) });
    expect(error.message).toBe('Segment answered 400: {"error":"bad","headers":{"authorization":"Basic ***"}}');
  });

  it('refuses an event too large for Segment before sending it, and sends the largest one it allows', async () => {
    const client = clientFor(sink.url);
    const sized = (bytes: number) => {
      const call = trackCall({ payload: '' });
      call.properties.payload = 'p'.repeat(bytes - Buffer.byteLength(JSON.stringify(call)));
      return call;
    };
    const largestAllowed = 32 * 1024 - 512;
    await expect(client.track(sized(largestAllowed + 1))).rejects.toMatchObject({ retryable: false, status: undefined });
    expect(sink.requests).toBe(0);
    // The sink, like Segment, refuses an event over 32 KB as sent, SDK additions included.
    await client.track(sized(largestAllowed));
    expect(sink.accepted).toHaveLength(1);
  });

  it('keeps a request of the largest events under Segment\'s 500 KB', async () => {
    const client = clientFor(sink.url);
    const calls = Array.from({ length: 40 }, () => trackCall({ payload: 'p'.repeat(31 * 1024) }));
    await Promise.all(calls.map((call) => client.track(call)));
    expect(sink.accepted).toHaveLength(40);
    expect(sink.batches.every((batch) => batch.batch.length <= 15)).toBe(true);
  });

  it('why the client never shows the SDK a 429: with maxRetries 0 the bare SDK still retries it', async () => {
    sink.answerNext(1, { status: 429, headers: { 'Retry-After': '1' } });
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: sink.url, maxRetries: 0, flushInterval: 10 });
    const delivered = new Promise<unknown>((resolve) => {
      analytics.on('track', () => resolve('delivered'));
      analytics.on('error', (error) => resolve(error.reason));
    });
    analytics.track({ event: 'Email Opened', anonymousId: 'reader@example.com' });
    // If a later SDK stops retrying here, the comment on SegmentHttpClient must change with it.
    expect(await delivered).toBe('delivered');
    expect(sink.requests).toBe(2);
    await analytics.closeAndFlush({ timeout: 1000 });
  });
});
