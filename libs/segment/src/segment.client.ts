import { errorMessageOf, fetchFailureReason, isFetchTimeout, maskedLine, retryAfterMsOf } from '@app/common';
import { Analytics, HTTPClient, HTTPClientRequest, HTTPResponse } from '@segment/analytics-node';
import { SegmentTrackCall } from './segment-track.types';

// Segment answers 400 to a whole request over 500 KB, or with an event over 32 KB in it (its HTTP
// API guide). The SDK's own size checks count the letter "i" and escaped characters, not bytes
// (ContextBatch.calculateSize in 3.1.0: a 30 KB event counts as 7), so they never fire: the
// limits are kept here. Our check measures the call before the SDK adds library, _metadata
// and type to it (about 100 bytes), hence the margin.
const SEGMENT_MAX_EVENT_BYTES = 32 * 1024;
const MAX_EVENT_BYTES = SEGMENT_MAX_EVENT_BYTES - 512;
// So many events of the largest size fit in a request under 500 KB, with room for the envelope.
const MAX_EVENTS_PER_REQUEST = Math.floor((480 * 1024) / SEGMENT_MAX_EVENT_BYTES);
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
// The SDK's flushInterval: calls made within 10 ms of each other share a request.
const FLUSH_INTERVAL_MS = 10;
// A refusal's body is read up to this many bytes (Segment's are a line of JSON); a reason keeps
// this many characters of it.
const MAX_BODY_BYTES_READ = 4096;
const MAX_REASON_DETAIL_CHARS = 300;
// 4xx answers worth another attempt: the SDK's own list (408, 410, 429, 460), plus 401 and 403,
// which say the write key is wrong or revoked: a configuration error that the operator can fix
// while the event waits, so it is retried with backoff like an outage rather than failed at once.
const RETRYABLE_CLIENT_ERRORS = new Set([401, 403, 408, 410, 429, 460]);

/** Why a track call was not delivered; `retryable` says whether another attempt may succeed. */
export class SegmentDeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
    /** Events in the request Segment answered: a refusal of several says nothing about each one. */
    readonly eventsInRequest?: number,
  ) {
    super(message);
    this.name = 'SegmentDeliveryError';
  }
}

/** 5xx but 501 and 505 (no retry makes the server support the request), and the 4xx listed above. */
function isRetryableStatus(status: number): boolean {
  if (status >= 500) return status !== 501 && status !== 505;
  if (status >= 400) return RETRYABLE_CLIENT_ERRORS.has(status);
  return true; // 1xx or 3xx (a redirect fetch did not follow): not an answer about the event
}

/** How many events a /v1/batch body carries; read on refusals only. */
function eventsIn(body: string): number | undefined {
  try {
    const { batch } = JSON.parse(body) as { batch?: unknown };
    return Array.isArray(batch) ? batch.length : undefined;
  } catch {
    return undefined;
  }
}

/** One line of at most MAX_REASON_DETAIL_CHARS characters, with the write key masked. */
/**
 * What the destination said, in one line, with the write key masked as it was sent too (Basic
 * `writeKey:` in base64): a destination that echoes the request's headers must not put it in a
 * reason that the admin API shows.
 */
function readable(text: string, writeKey: string): string {
  const sent = Buffer.from(`${writeKey}:`).toString('base64');
  return maskedLine(text, [writeKey, sent, sent.replace(/=+$/, ''), encodeURIComponent(writeKey)], MAX_REASON_DETAIL_CHARS);
}

/** The first MAX_BODY_BYTES_READ bytes of a body, or what arrived of them: the status already said what matters. */
async function bodyPrefixOf(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_BODY_BYTES_READ) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // Reset or timed out halfway through the body: keep what arrived.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES_READ).toString('utf8');
}

/**
 * The SDK's documented `httpClient` hook, so that what Segment answered reaches the worker as it was.
 * It sends each batch and throws a SegmentDeliveryError for every answer that is not 2xx and for
 * every request that got no answer; the SDK, told `maxRetries: 0`, gives up on a batch whose request
 * threw and hands that same error to each of its events (`'error'`, code `delivery_failure`).
 *
 * The SDK must never see a real refusal. Its publisher (3.1.0) treats 3xx as delivered, and with
 * `maxRetries: 0` still retries a 429 that carries Retry-After in seconds, up to 20 times, each after
 * waiting it out (1 s to 300 s), while every other batch waits too. Everything else it would retry
 * (5xx, 408, 410, 460, 429 without Retry-After, network errors) counts against maxRetries and so
 * fails at once. BullMQ owns retries: test/segment-client.contract.e2e-spec.ts counts the requests.
 */
class SegmentHttpClient implements HTTPClient {
  constructor(
    private readonly writeKey: string,
    private readonly requestTimeoutMs: number,
    private readonly observe: RequestObserver,
  ) {}

  async makeRequest(request: HTTPClientRequest): Promise<HTTPResponse> {
    let response: Response;
    const started = performance.now();
    try {
      response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
    } catch (error) {
      this.observe('error', (performance.now() - started) / 1000);
      throw this.unreachable(error);
    }
    const body = await bodyPrefixOf(response);
    this.observe(String(response.status), (performance.now() - started) / 1000);
    if (response.status >= 200 && response.status < 300) {
      return { status: response.status, statusText: response.statusText, headers: response.headers };
    }
    const detail = readable(body, this.writeKey);
    throw new SegmentDeliveryError(
      `Segment answered ${response.status}${detail ? `: ${detail}` : ''}`,
      isRetryableStatus(response.status),
      response.status,
      retryAfterMsOf(response.headers.get('retry-after')),
      eventsIn(request.body),
    );
  }

  private unreachable(error: unknown): SegmentDeliveryError {
    if (isFetchTimeout(error)) {
      return new SegmentDeliveryError(`Segment unreachable: no answer within ${this.requestTimeoutMs} ms`, true);
    }
    return new SegmentDeliveryError(`Segment unreachable: ${readable(fetchFailureReason(error), this.writeKey)}`, true);
  }
}

/** What one request to the destination ended with: its HTTP status or `error`, and its duration in seconds. */
export type RequestObserver = (code: string, seconds: number) => void;

export interface SegmentClientOptions {
  writeKey: string;
  host: string;
  /**
   * Events sent together in one request, at most 100: calls of up to 4 KB share requests of this
   * size, larger ones requests of 15 (so that 15 of the largest stay under Segment's 500 KB).
   */
  maxBatchSize: number;
  /** How long one request to Segment may take, answer included; 10 s unless set. */
  requestTimeoutMs?: number;
  /** Told of every request: the HTTP status (`error` when no answer came) and how long it took. */
  observe?: RequestObserver;
}

// A request of 100 events of this size, with what the SDK adds to each, stays under 480 KB.
const SMALL_EVENT_BYTES = Math.floor((480 * 1024) / 100) - 512;
const MAX_SMALL_EVENTS_PER_REQUEST = 100;

interface PendingDelivery {
  resolve: () => void;
  reject: (error: SegmentDeliveryError) => void;
}

/**
 * One SDK instance and the calls waiting for its delivery results. The SDK batches by count only,
 * so calls are routed to an instance whose batch size keeps every request under Segment's limit.
 */
class SdkChannel {
  private readonly analytics: Analytics;
  /** Per Segment messageId, the calls waiting for its delivery result. */
  private readonly pending = new Map<string, PendingDelivery[]>();

  constructor(
    options: SegmentClientOptions,
    flushAt: number,
    private readonly requestTimeoutMs: number,
    private readonly deliveryResultTimeoutMs: number,
  ) {
    this.analytics = new Analytics({
      writeKey: options.writeKey,
      ...batchEndpointOf(options.host),
      maxRetries: 0,
      flushAt,
      flushInterval: FLUSH_INTERVAL_MS,
      httpRequestTimeout: requestTimeoutMs,
      httpClient: new SegmentHttpClient(options.writeKey, requestTimeoutMs, options.observe ?? (() => undefined)),
    });
    // The SDK's per-call callback is held back until 300 ms after the call (a browser-minded
    // minimum), which caps a worker at a few hundred events a second; its delivery events are not.
    this.analytics.on('track', (context) => this.settle(context.event.messageId));
    this.analytics.on('error', (error) => {
      if (error.code === 'delivery_failure' && error.ctx) {
        this.settle(error.ctx.event.messageId, deliveryErrorOf(error.reason, options.writeKey));
      }
    });
  }

  /** A delivery that gave up waiting; the last one of its messageId takes the entry with it. */
  private forget(messageId: string, delivery: PendingDelivery): void {
    const waiting = this.pending.get(messageId)?.filter((other) => other !== delivery) ?? [];
    if (waiting.length > 0) this.pending.set(messageId, waiting);
    else this.pending.delete(messageId);
  }

  private settle(messageId: string | undefined, error?: SegmentDeliveryError): void {
    if (!messageId) return;
    const waiting = this.pending.get(messageId);
    if (!waiting) return;
    this.pending.delete(messageId);
    for (const delivery of waiting) error ? delivery.reject(error) : delivery.resolve();
  }

  async track(call: SegmentTrackCall): Promise<void> {
    // An event dispatched before the SDK's plugin is registered waits in its internal queue, and
    // while that queue is not empty every later event goes through it one at a time, each
    // waiting for its batch: about a hundred events a second instead of thousands.
    await this.analytics.ready;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.forget(call.messageId, delivery);
        reject(new SegmentDeliveryError(`no delivery result from the Segment client within ${this.deliveryResultTimeoutMs} ms`, true));
      }, this.deliveryResultTimeoutMs);
      const delivery: PendingDelivery = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const waiting = this.pending.get(call.messageId);
      if (waiting) waiting.push(delivery);
      else this.pending.set(call.messageId, [delivery]);
      this.analytics.track(call);
    });
  }

  async close(timeoutMs: number): Promise<void> {
    await this.analytics.closeAndFlush({ timeout: timeoutMs });
  }
}

/**
 * The SDK's host and path for `<host>/v1/batch`. It joins them as `new URL(path, host)`, which
 * drops a path in the host (a data plane or a proxy under a prefix): the prefix goes in the path.
 */
function batchEndpointOf(host: string): { host: string; path: string } {
  const url = new URL(host);
  return { host: url.origin, path: `${url.pathname.replace(/\/+$/, '')}/v1/batch` };
}

/** Our HTTP client's error as it threw it, or one for a batch the SDK gave up on without a request of ours. */
function deliveryErrorOf(reason: unknown, writeKey: string): SegmentDeliveryError {
  if (reason instanceof SegmentDeliveryError) return reason;
  // The SDK gave up by itself (closeAndFlush's deadline): Segment never said the event is wrong.
  return new SegmentDeliveryError(`Segment client did not send the event: ${readable(errorMessageOf(reason), writeKey)}`, true);
}

/** What became of one call of `deliver`: accepted, or the reason it was not. */
export type DeliveryResult = { accepted: true } | { accepted: false; error: SegmentDeliveryError };

/** Sends track calls and says, per call, whether Segment accepted it. */
export class SegmentClient {
  private readonly small: SdkChannel;
  private readonly large: SdkChannel;
  /** One event per request: to find which events of a refused request Segment refuses. */
  private readonly alone: SdkChannel;

  constructor(options: SegmentClientOptions) {
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    // A request ends within its timeout; past this, the SDK lost the result (a bug), and the job retries.
    const resultTimeoutMs = requestTimeoutMs + FLUSH_INTERVAL_MS + 5_000;
    const batch = Math.max(1, Math.min(options.maxBatchSize, MAX_SMALL_EVENTS_PER_REQUEST));
    this.small = new SdkChannel(options, batch, requestTimeoutMs, resultTimeoutMs);
    this.large = new SdkChannel(options, Math.min(batch, MAX_EVENTS_PER_REQUEST), requestTimeoutMs, resultTimeoutMs);
    this.alone = new SdkChannel(options, 1, requestTimeoutMs, resultTimeoutMs);
  }

  /** Resolves once Segment accepted the call; rejects with a SegmentDeliveryError. */
  async track(call: SegmentTrackCall): Promise<void> {
    const size = sizeOf(call);
    await (size <= SMALL_EVENT_BYTES ? this.small : this.large).track(call);
  }

  /**
   * Sends the calls (sharing requests with each other and with other callers') and answers, per
   * call, whether Segment accepted it. A permanent refusal of a request that carried several
   * events says nothing about each of them: those are sent again one per request, so that one
   * event Segment refuses never fails the others.
   */
  async deliver(calls: readonly SegmentTrackCall[]): Promise<DeliveryResult[]> {
    const settle = (delivery: Promise<void>) =>
      delivery.then(
        (): DeliveryResult => ({ accepted: true }),
        (error: unknown): DeliveryResult => ({ accepted: false, error: asDeliveryError(error) }),
      );
    const first = await Promise.all(calls.map((call) => settle(this.track(call))));
    return Promise.all(
      first.map((result, index) =>
        !result.accepted && !result.error.retryable && (result.error.eventsInRequest ?? 1) > 1
          ? settle(this.alone.track(calls[index]))
          : result,
      ),
    );
  }

  /** Sends what is buffered and stops; call once no job is active any more. */
  async close(timeoutMs: number): Promise<void> {
    await Promise.all([this.small, this.large, this.alone].map((channel) => channel.close(timeoutMs)));
  }
}

function asDeliveryError(error: unknown): SegmentDeliveryError {
  return error instanceof SegmentDeliveryError ? error : new SegmentDeliveryError(`Segment client failed: ${errorMessageOf(error)}`, true);
}

/** The size check the SDK gets wrong; an event over it is refused here, for good. */
function sizeOf(call: SegmentTrackCall): number {
  const size = Buffer.byteLength(JSON.stringify(call));
  if (size > MAX_EVENT_BYTES) {
    throw new SegmentDeliveryError(`event is ${size} bytes, over the ${MAX_EVENT_BYTES}-byte limit (Segment's 32 KB, less what the SDK adds)`, false);
  }
  return size;
}
