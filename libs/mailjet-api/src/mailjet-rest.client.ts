import { fetchFailureReason, isFetchTimeout, maskedLine, retryAfterMsOf } from '@app/common';
import { parseJsonExact } from '@app/mailjet';
import { MailjetApiError } from './mailjet-api.error';

export interface MailjetRestClientOptions {
  /** Mailjet's origin, e.g. `https://api.mailjet.com`, without `/v3`. */
  baseUrl: string;
  apiKey: string;
  apiSecret: string;
  /** How long one request may take, body included; 10 s unless set. */
  requestTimeoutMs?: number;
  /** Retries after a 429, a 5xx, a timeout or a network error; 5 unless set. */
  maxRetries?: number;
  /** The first retry's delay, doubling at each retry, with jitter; 500 ms unless set. */
  backoffMs?: number;
}

export type MailjetQuery = Record<string, string | number | boolean>;

// Mailjet's largest page. A read without Limit silently answers 10 rows, so every list read sets it.
export const MAILJET_PAGE_SIZE = 1000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RETRIES = 5;
const DEFAULT_BACKOFF_MS = 500;
// No wait between two attempts is longer, whatever Retry-After says: Mailjet's limits are per second.
const MAX_RETRY_DELAY_MS = 30_000;
// A page of 1,000 messages with subjects is well under 1 MB; an answer this large is not Mailjet's.
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
// How much of Mailjet's answer an error quotes.
const MAX_ERROR_DETAIL_CHARS = 300;
// Errors under which the request surely never reached Mailjet: the only ones a POST is retried after.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);
const RESOURCE_PATH = /^[A-Za-z]+(\/[A-Za-z0-9._@%+-]+)*$/;
const ID_FIELD = /ID$/;

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

interface Answer {
  status: number;
  text: string;
}

/** Why an attempt failed, for the retry decision and the final error. */
type Failure =
  | { kind: 'status'; status: number; text: string; retryAfterMs?: number }
  | { kind: 'timeout' }
  | { kind: 'network'; reason: string; notSent: boolean };

class AnswerTooLarge extends Error {}

function integerOption(value: number | undefined, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`MailjetRestClient: ${name} must be an integer of at least ${min}, not ${value}`);
  }
  return value;
}

function originOf(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new Error(`MailjetRestClient: baseUrl is not a URL: ${JSON.stringify(baseUrl.slice(0, 100))}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('MailjetRestClient: baseUrl must be http(s)');
  if (url.username || url.password) throw new Error('MailjetRestClient: baseUrl must not carry credentials');
  const path = url.pathname.replace(/\/+$/, '');
  if (/\/v3(\/REST)?$/i.test(path)) throw new Error('MailjetRestClient: baseUrl must not end in /v3: the client adds /v3/REST');
  return `${url.origin}${path}`;
}

function checkedResource(resource: string): string {
  // '..' would climb out of /v3/REST once the URL is resolved.
  const climbs = resource.split('/').some((segment) => /^\.+$/.test(segment));
  if (!RESOURCE_PATH.test(resource) || climbs) {
    throw new Error(`MailjetRestClient: not a resource path: ${JSON.stringify(resource.slice(0, 100))}`);
  }
  return resource;
}

function pathWithId(resource: string, id: string): string {
  if (id === '') throw new Error(`MailjetRestClient: an empty id for ${resource}`);
  return `${checkedResource(resource)}/${encodeURIComponent(id)}`;
}

function causeCodeOf(error: unknown): unknown {
  const cause = typeof error === 'object' && error !== null ? (error as { cause?: unknown }).cause : undefined;
  return typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The body as text, read to its end but refused beyond MAX_ANSWER_BYTES. */
async function textOf(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw new AnswerTooLarge(`is over ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Mailjet's ids as strings, whatever their size: the parser already turned those beyond 2^53 into
 * digits; this does the same for the small ones, on every field Mailjet names `ID` or `...ID`.
 */
function withStringIds(row: Record<string, unknown>): Record<string, unknown> {
  for (const [field, value] of Object.entries(row)) {
    if (ID_FIELD.test(field) && typeof value === 'number' && Number.isInteger(value)) row[field] = String(value);
  }
  return row;
}

function isRow(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A client of Mailjet's REST API v3 (`/v3/REST/<resource>`) for one API key, built per source.
 *
 * - Every list read pages with `Limit=1000` and walks `Offset` until a page comes back short.
 * - 429 (after Retry-After when given), 5xx, timeouts and network errors are retried with
 *   exponential backoff and jitter, up to `maxRetries`; other 4xx are not. A POST is not
 *   idempotent: it is retried only where Mailjet surely did nothing (429, connection refused),
 *   so a create whose answer was lost fails rather than risking a second row; read, then retry.
 * - Answers keep ids beyond 2^53 exact, and every `...ID` field is a string (MailjetId).
 * - Errors are MailjetApiError; the key and secret never appear in them (masked if Mailjet
 *   echoes them). The client logs nothing.
 */
/** `//user:password@` in a URL, also with JSON's escaped slashes (`\/\/`): the password is group-less, the rest kept. */
const URL_PASSWORD = /((?:\/\/|\\\/\\\/)[^\s/\\:@"]*):[^\s@"]*@/g;

export class MailjetRestClient {
  private readonly origin: string;
  private readonly authorization: string;
  private readonly secrets: string[];
  private readonly requestTimeoutMs: number;
  private readonly maxRetries: number;
  private readonly backoffMs: number;

  constructor(options: MailjetRestClientOptions) {
    if (!options.apiKey || !options.apiSecret) throw new Error('MailjetRestClient: apiKey and apiSecret are required');
    this.origin = originOf(options.baseUrl);
    const token = Buffer.from(`${options.apiKey}:${options.apiSecret}`, 'utf8').toString('base64');
    this.authorization = `Basic ${token}`;
    // The forms in which an answer could echo them: as sent, JSON-escaped, URL-encoded.
    this.secrets = [options.apiKey, options.apiSecret, token].flatMap((secret) => [
      secret,
      JSON.stringify(secret).slice(1, -1),
      encodeURIComponent(secret),
    ]);
    this.requestTimeoutMs = integerOption(options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 'requestTimeoutMs', 1);
    this.maxRetries = integerOption(options.maxRetries, DEFAULT_MAX_RETRIES, 'maxRetries', 0);
    this.backoffMs = integerOption(options.backoffMs, DEFAULT_BACKOFF_MS, 'backoffMs', 0);
  }

  /** Every row of a list, read 1,000 at a time. */
  async listAll<T>(resource: string, query: MailjetQuery = {}): Promise<T[]> {
    const rows: T[] = [];
    for await (const page of this.pages<T>(resource, query)) rows.push(...page);
    return rows;
  }

  /**
   * The pages of a list, 1,000 rows each but the last, in Mailjet's order. `Limit` is the client's;
   * an `Offset` in `query` is where the walk starts. The walk ends at the first page with fewer
   * rows than asked (never on `Total`), so a list whose size is a multiple of 1,000 costs one
   * more, empty, read.
   */
  async *pages<T>(resource: string, query: MailjetQuery = {}): AsyncGenerator<T[]> {
    if ('Limit' in query) throw new Error(`MailjetRestClient: pages of ${resource} are always read with Limit=${MAILJET_PAGE_SIZE}`);
    let offset = Number(query.Offset ?? 0);
    if (!Number.isInteger(offset) || offset < 0) {
      throw new Error(`MailjetRestClient: Offset must be a whole number, not ${query.Offset}`);
    }
    for (;;) {
      const page = await this.readList<T>(resource, { ...query, Limit: MAILJET_PAGE_SIZE, Offset: offset });
      if (page.length > 0) yield page;
      if (page.length < MAILJET_PAGE_SIZE) return;
      offset += page.length;
    }
  }

  /** How many rows the list holds (its `Total`), read with one row. */
  async total(resource: string, query: MailjetQuery = {}): Promise<number> {
    const path = checkedResource(resource);
    const answer = await this.send('GET', path, { query: { ...query, Limit: 1, Offset: 0 }, accept: [200] });
    let total: unknown;
    try {
      total = (parseJsonExact(answer.text) as { Total?: unknown }).Total;
    } catch {
      total = undefined;
    }
    if (typeof total !== 'number' || !Number.isInteger(total) || total < 0) throw this.invalid('GET', path, 200, 'without a whole Total');
    return total;
  }

  /** One row, or null when Mailjet has none under this id (404). */
  async get<T>(resource: string, id: string, query: MailjetQuery = {}): Promise<T | null> {
    const path = pathWithId(resource, id);
    const answer = await this.send('GET', path, { query, accept: [200, 404] });
    if (answer.status === 404) return null;
    return (this.rowsOf(answer, 'GET', path)[0] as T | undefined) ?? null;
  }

  /** Creates a row (POST, 201) and answers it as Mailjet stored it. */
  async create<T>(resource: string, body: Record<string, unknown>): Promise<T> {
    const path = checkedResource(resource);
    const answer = await this.send('POST', path, { body, accept: [200, 201] });
    return this.onlyRow<T>(answer, 'POST', path);
  }

  /**
   * Changes the fields in `body` of one row (PUT is a partial update) and answers the row. Mailjet
   * answers 304 without a body to a PUT that changed nothing: the row is then read again.
   */
  async update<T>(resource: string, id: string, body: Record<string, unknown>): Promise<T> {
    const path = pathWithId(resource, id);
    const answer = await this.send('PUT', path, { body, accept: [200, 304] });
    if (answer.status === 200) return this.onlyRow<T>(answer, 'PUT', path);
    const row = await this.get<T>(resource, id);
    if (row === null) throw this.invalid('PUT', path, 304, 'and the row is gone when read again');
    return row;
  }

  /** Deletes one row (204). A row that is already gone (404) counts as deleted: the caller's aim is met. */
  async delete(resource: string, id: string): Promise<void> {
    await this.send('DELETE', pathWithId(resource, id), { accept: [200, 204, 404] });
  }

  private async readList<T>(resource: string, query: MailjetQuery): Promise<T[]> {
    const path = checkedResource(resource);
    return this.rowsOf(await this.send('GET', path, { query, accept: [200] }), 'GET', path) as T[];
  }

  private onlyRow<T>(answer: Answer, method: Method, path: string): T {
    const [row] = this.rowsOf(answer, method, path);
    if (row === undefined) throw this.invalid(method, path, answer.status, 'without the row in Data');
    return row as T;
  }

  /** The rows of a `{Count, Total, Data: [...]}` answer, with string ids. */
  private rowsOf(answer: Answer, method: Method, path: string): Array<Record<string, unknown>> {
    let parsed: unknown;
    try {
      parsed = parseJsonExact(answer.text);
    } catch {
      throw this.invalid(method, path, answer.status, `with a body that is not JSON: ${this.readable(answer.text)}`);
    }
    const data = isRow(parsed) ? parsed.Data : undefined;
    if (!Array.isArray(data) || !data.every(isRow)) {
      throw this.invalid(method, path, answer.status, `without a Data list of rows: ${this.readable(answer.text)}`);
    }
    return data.map(withStringIds);
  }

  /**
   * One call: attempts until an answer whose status is in `accept`, or until retries run out or
   * the failure is not worth another attempt.
   */
  private async send(
    method: Method,
    path: string,
    { query = {}, body, accept }: { query?: MailjetQuery; body?: Record<string, unknown>; accept: number[] },
  ): Promise<Answer> {
    const search = new URLSearchParams(Object.entries(query).map(([name, value]): [string, string] => [name, String(value)])).toString();
    const url = `${this.origin}/v3/REST/${path}${search ? `?${search}` : ''}`;
    const headers: Record<string, string> = { authorization: this.authorization, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(method, path, url, headers, body, accept);
      if ('answer' in outcome) return outcome.answer;
      const { failure } = outcome;
      if (attempt > this.maxRetries || !this.worthRetrying(method, failure)) throw this.errorOf(method, path, failure, attempt);
      await sleep(this.delayBefore(attempt, failure));
    }
  }

  /** One request: Mailjet's answer when its status is accepted, else what went wrong. */
  private async attempt(
    method: Method,
    path: string,
    url: string,
    headers: Record<string, string>,
    body: Record<string, unknown> | undefined,
    accept: number[],
  ): Promise<{ answer: Answer } | { failure: Failure }> {
    try {
      const response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        // A redirect is no Mailjet answer; following one could carry the credentials elsewhere.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      const text = await textOf(response);
      if (accept.includes(response.status)) return { answer: { status: response.status, text } };
      const retryAfterMs = retryAfterMsOf(response.headers.get('retry-after'));
      return { failure: { kind: 'status', status: response.status, text, retryAfterMs } };
    } catch (error) {
      if (error instanceof AnswerTooLarge) throw this.invalid(method, path, undefined, error.message);
      if (isFetchTimeout(error)) return { failure: { kind: 'timeout' } };
      const code = causeCodeOf(error);
      const notSent = typeof code === 'string' && NOT_SENT_CODES.has(code);
      return { failure: { kind: 'network', reason: fetchFailureReason(error), notSent } };
    }
  }

  private worthRetrying(method: Method, failure: Failure): boolean {
    if (failure.kind === 'status' && failure.status !== 429 && failure.status < 500) return false;
    if (method !== 'POST') return true;
    return (failure.kind === 'status' && failure.status === 429) || (failure.kind === 'network' && failure.notSent);
  }

  /** Retry-After when Mailjet gave one, else backoffMs doubled at each retry; plus up to half a backoff of jitter. */
  private delayBefore(attempt: number, failure: Failure): number {
    const retryAfterMs = failure.kind === 'status' ? failure.retryAfterMs : undefined;
    const base = retryAfterMs ?? this.backoffMs * 2 ** (attempt - 1);
    return Math.min(base + (Math.random() * this.backoffMs) / 2, MAX_RETRY_DELAY_MS);
  }

  private errorOf(method: Method, path: string, failure: Failure, attempts: number): MailjetApiError {
    const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
    switch (failure.kind) {
      case 'status': {
        const detail = this.detailOf(failure.text);
        return new MailjetApiError(
          `Mailjet answered ${failure.status} on ${method} ${path}${detail ? `: ${detail}` : ''}${tries}`,
          failure.status,
          method,
          path,
          attempts,
        );
      }
      case 'timeout':
        return new MailjetApiError(
          `Mailjet did not answer ${method} ${path} within ${this.requestTimeoutMs} ms${tries}`,
          undefined,
          method,
          path,
          attempts,
        );
      case 'network':
        return new MailjetApiError(
          `Mailjet unreachable for ${method} ${path}: ${this.readable(failure.reason)}${tries}`,
          undefined,
          method,
          path,
          attempts,
        );
    }
  }

  /** An answer that is not what the API documents: not retried, another attempt would get the same. */
  private invalid(method: Method, path: string, status: number | undefined, what: string): MailjetApiError {
    const message =
      status === undefined ? `Mailjet's answer to ${method} ${path} ${what}` : `Mailjet answered ${status} on ${method} ${path} ${what}`;
    return new MailjetApiError(message, status, method, path, 1);
  }

  /** Mailjet's own words when its error body has them (`ErrorMessage`, `ErrorInfo`), else the body. */
  private detailOf(text: string): string {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.readable(text);
    }
    if (!isRow(parsed) || typeof parsed.ErrorMessage !== 'string') return this.readable(text);
    const info = typeof parsed.ErrorInfo === 'string' && parsed.ErrorInfo !== '' ? ` (${parsed.ErrorInfo})` : '';
    return this.readable(`${parsed.ErrorMessage}${info}`);
  }

  /** Masks the client's own secrets, and the password of any URL quoted back (a callback URL carries the webhook's). */
  private readable(text: string): string {
    return maskedLine(text.replace(URL_PASSWORD, '$1:***@'), this.secrets, MAX_ERROR_DETAIL_CHARS);
  }
}
