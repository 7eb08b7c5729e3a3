import http from 'node:http';
import type { AddressInfo } from 'node:net';

const MAX_REQUEST_BYTES = 500 * 1024;
const MAX_EVENT_BYTES = 32 * 1024;

export interface SinkBatch {
  receivedAt: number;
  /** What the sink answered: only batches answered 2xx were accepted. */
  status: number;
  batch: Array<
    Record<string, unknown> & { messageId: string; event: string; type: string; properties: Record<string, unknown> }
  >;
  sentAt: string;
}

export type SinkAnswer =
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Reads the request and never answers (until the sink stops): a client's timeout must end it. */
  | { hang: true };

/**
 * A local stand-in for Segment's tracking API: `POST /v1/batch` with Basic auth (the write key as
 * user) and Segment's size limits, recording every batch. It can be told to refuse connections,
 * to give scripted answers (500, 429 with Retry-After, 400) before answering 200 again, or to hang.
 */
export class SegmentSink {
  readonly batches: SinkBatch[] = [];
  readonly requestTimes: number[] = [];
  private readonly script: SinkAnswer[] = [];
  /** Answers every request with this until cleared (time-based faults); the script goes first. */
  standingAnswer?: SinkAnswer;
  /** A destination that refuses, with a 400 for the whole request, any batch holding an event this matches. */
  refuseBatchesWith?: (event: SinkBatch['batch'][number]) => boolean;
  /** Delay before each answer, to keep jobs active for a while. */
  latencyMs = 0;
  /** A data plane under a prefix: the batch endpoint is `<basePath>/v1/batch`. */
  basePath = '';
  private server?: http.Server;
  port = 0;

  constructor(private readonly writeKey: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Every request the sink received, answered or not: a client's hidden retries show here. */
  get requests(): number {
    return this.requestTimes.length;
  }

  /** Events that the sink accepted (answered 2xx), in arrival order. */
  get accepted(): SinkBatch['batch'] {
    return this.batches.filter((b) => b.status < 300).flatMap((b) => b.batch);
  }

  async start(port = this.port): Promise<this> {
    this.server = http.createServer((request, response) => this.handle(request, response));
    this.server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject).listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The next `times` requests get `answer`, then the ones scripted after it, then 200. */
  answerNext(times: number, answer: SinkAnswer): void {
    for (let i = 0; i < times; i++) this.script.push(answer);
  }

  /** Closes the port: connections are refused until `start()` again. */
  async refuseConnections(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async stop(): Promise<void> {
    await this.refuseConnections();
  }

  reset(): void {
    this.batches.length = 0;
    this.requestTimes.length = 0;
    this.script.length = 0;
    this.standingAnswer = undefined;
    this.refuseBatchesWith = undefined;
    this.latencyMs = 0;
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      this.requestTimes.push(Date.now());
      const answer = (status: number, body: string, headers: Record<string, string> = {}) => {
        response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
      };
      if (request.method !== 'POST' || request.url !== `${this.basePath}/v1/batch`) return answer(404, '{"error":"not found"}');
      const expected = `Basic ${Buffer.from(`${this.writeKey}:`).toString('base64')}`;
      if (request.headers.authorization !== expected) return answer(401, '{"error":"invalid write key"}');
      let body: { batch: SinkBatch['batch']; sentAt: string };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(400, '{"error":"invalid JSON"}');
      }
      // Segment's limits (its HTTP API guide): 400 for a request over 500 KB or an event over 32 KB.
      const tooLarge =
        Buffer.concat(chunks).length > MAX_REQUEST_BYTES ||
        body.batch.some((event) => Buffer.byteLength(JSON.stringify(event)) > MAX_EVENT_BYTES);
      if (tooLarge) return answer(400, '{"error":"payload too large"}');
      if (this.refuseBatchesWith && body.batch.some(this.refuseBatchesWith)) {
        this.batches.push({ receivedAt: Date.now(), status: 400, batch: body.batch, sentAt: body.sentAt });
        return answer(400, '{"error":"invalid event in batch"}');
      }
      const scripted = this.script.shift() ?? this.standingAnswer ?? { status: 200, body: '{"success":true}' };
      if ('hang' in scripted) return;
      const reply = () => {
        this.batches.push({ receivedAt: Date.now(), status: scripted.status, batch: body.batch, sentAt: body.sentAt });
        answer(scripted.status, scripted.body ?? (scripted.status < 300 ? '{"success":true}' : '{"error":"scripted"}'), scripted.headers);
      };
      if (this.latencyMs > 0) setTimeout(reply, this.latencyMs);
      else reply();
    });
  }
}
