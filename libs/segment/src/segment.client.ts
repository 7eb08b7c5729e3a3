import { Analytics, FetchHTTPClient, HTTPClient, HTTPClientRequest, HTTPResponse } from '@segment/analytics-node';
import { SegmentTrackCall } from './segment-track.types';

// Segment refuses events over 32 KB; checked before sending so that the reason is ours.
const MAX_EVENT_BYTES = 32 * 1024;
const RETRYABLE_STATUSES = new Set([408, 410, 429, 460]);
const REQUEST_TIMEOUT_MS = 10_000;

/** Why a track call was not delivered; `retryable` says whether another attempt may succeed. */
export class SegmentDeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'SegmentDeliveryError';
  }
}

interface RefusedResponse {
  status: number;
  retryAfterMs?: number;
  body: string;
}
const REFUSED_MARKER = 'segment-refused:';

function retryAfterMsOf(header: string | null | undefined): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(seconds, 0) * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(date - Date.now(), 0);
}

function headerOf(response: HTTPResponse, name: string): string | undefined {
  const { headers } = response;
  if (!headers) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') return (headers as { get(k: string): string | null }).get(name) ?? undefined;
  const entry = Object.entries(headers).find(([key]) => key.toLowerCase() === name);
  return entry ? String(entry[1]) : undefined;
}

/**
 * The SDK retries 5xx and 429 by itself, for minutes, where BullMQ cannot see it. Every
 * non-2xx answer is handed to the SDK as a 400, which it gives up on at once; the real status,
 * Retry-After and body travel in the status text, and BullMQ's retry policy decides.
 */
class NoRetryHttpClient implements HTTPClient {
  private readonly fetchClient = new FetchHTTPClient();

  async makeRequest(request: HTTPClientRequest): Promise<HTTPResponse> {
    const response = await this.fetchClient.makeRequest(request);
    if (response.status >= 200 && response.status < 300) return response;
    const refused: RefusedResponse = {
      status: response.status,
      retryAfterMs: retryAfterMsOf(headerOf(response, 'retry-after')),
      body: (await response.text?.().catch(() => '')) ?? '',
    };
    return { status: 400, statusText: `${REFUSED_MARKER}${JSON.stringify(refused)}`, headers: {} };
  }
}

function deliveryErrorOf(reason: unknown): SegmentDeliveryError {
  const message = reason instanceof Error ? reason.message : String(reason);
  const marker = message.indexOf(REFUSED_MARKER);
  if (marker === -1) {
    // No HTTP answer: network error, timeout, connection refused.
    return new SegmentDeliveryError(`Segment unreachable: ${message}`, true);
  }
  const refused = JSON.parse(message.slice(marker + REFUSED_MARKER.length)) as RefusedResponse;
  const retryable = refused.status >= 500 ? ![501, 505].includes(refused.status) : RETRYABLE_STATUSES.has(refused.status);
  const body = refused.body.replace(/\s+/g, ' ').slice(0, 300);
  return new SegmentDeliveryError(
    `Segment answered ${refused.status}${body ? `: ${body}` : ''}`,
    retryable,
    refused.status,
    refused.retryAfterMs,
  );
}

export interface SegmentClientOptions {
  writeKey: string;
  host: string;
  /** Events sent together in one request; a job still waits for its own event's result. */
  maxBatchSize: number;
}

interface PendingDelivery {
  resolve: () => void;
  reject: (error: SegmentDeliveryError) => void;
}

// Longer than a request may take (REQUEST_TIMEOUT_MS) plus the batching interval.
const DELIVERY_RESULT_TIMEOUT_MS = REQUEST_TIMEOUT_MS + 5_000;

/** Sends track calls and resolves once Segment accepted each one; rejects with a SegmentDeliveryError. */
export class SegmentClient {
  private readonly analytics: Analytics;
  /** Per Segment messageId, the jobs waiting for its delivery result. */
  private readonly pending = new Map<string, PendingDelivery[]>();

  constructor(options: SegmentClientOptions) {
    this.analytics = new Analytics({
      writeKey: options.writeKey,
      host: options.host,
      path: '/v1/batch',
      maxRetries: 0,
      flushAt: options.maxBatchSize,
      flushInterval: 10,
      httpRequestTimeout: REQUEST_TIMEOUT_MS,
      httpClient: new NoRetryHttpClient(),
    });
    // The SDK's per-call callback is held back until 300 ms after the call (a browser-minded
    // minimum), which caps a worker at a few hundred events a second; its delivery events are not.
    this.analytics.on('track', (context) => this.settle(context.event.messageId));
    this.analytics.on('error', (error) => {
      if (error.code === 'delivery_failure' && error.ctx) this.settle(error.ctx.event.messageId, deliveryErrorOf(error.reason));
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
    const size = Buffer.byteLength(JSON.stringify(call));
    if (size > MAX_EVENT_BYTES) {
      throw new SegmentDeliveryError(`event is ${size} bytes, over Segment's ${MAX_EVENT_BYTES}-byte limit`, false);
    }
    // An event dispatched before the SDK's plugin is registered waits in its internal queue, and
    // while that queue is not empty every later event goes through it one at a time, each
    // waiting for its batch: about a hundred events a second instead of thousands.
    await this.analytics.ready;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.forget(call.messageId, delivery);
        reject(new SegmentDeliveryError(`no delivery result from the Segment client within ${DELIVERY_RESULT_TIMEOUT_MS} ms`, true));
      }, DELIVERY_RESULT_TIMEOUT_MS);
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

  /** Sends what is buffered and stops; call once no job is active any more. */
  async close(timeoutMs: number): Promise<void> {
    await this.analytics.closeAndFlush({ timeout: timeoutMs });
  }
}
