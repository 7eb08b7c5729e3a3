import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAILJET_EVENT_TYPES, parseJsonExact } from '@app/mailjet';

/**
 * A local stand-in for Mailjet's REST API v3, speaking the shapes of /work/shared/docs/mailjet-rest.md
 * over real HTTP: `eventcallbackurl` (read, create, partial update, delete), `message`,
 * `messagehistory/{MessageID}`, `clickstatistics` and `contactslist/{ID}`, behind HTTP Basic.
 *
 * What it does where Mailjet's behaviour is documented:
 * - lists answer `{Count, Total, Data}`: Count the rows of this page, Total all that match; `Limit`
 *   defaults to 10 (the trap: a read without it sees 10 rows), at most 1000; `Offset` skips;
 * - POST answers 201, PUT 200 with the row, or 304 with no body when it changed nothing, DELETE 204;
 * - ids are written as bare JSON integers with all their digits, beyond 2^53 too.
 *
 * Where Mailjet's behaviour is unverified, the fake picks a reading (and says so) that a careful
 * client must survive; the options flip it:
 * - `FromTS` is exclusive (as singer-io/tap-mailjet found), `ToTS` inclusive: a client that wants
 *   [from, to) must ask FromTS = from - 1 and drop rows at `to` itself;
 * - a second POST for the same (EventType, IsBackup) is refused with 400, "already exists";
 * - `PUT {"Status": "alive"}` alone leaves a dead row dead: only a new Url revives it;
 * - `clickstatistics` without FromTS/ToTS answers the current day (UTC) only, filtered on ClickedAt;
 * - `messagehistory` of an unknown message answers 404;
 * - a query parameter the resource does not know is refused with 400, so that a typo
 *   (`FromTs`) fails a test instead of silently reading everything;
 * - error bodies are `{"ErrorInfo": "", "ErrorMessage": "...", "StatusCode": n}`.
 */

/** An id as test code writes it; kept as a bigint inside and written with all its digits. */
type IdInput = bigint | number | string;

export interface MailjetFakeOptions {
  apiKey: string;
  apiSecret: string;
  /** The APIKeyID on callback rows. */
  apiKeyId?: IdInput;
}

export interface FakeCallbackSeed {
  EventType: string;
  Url: string;
  Status?: 'alive' | 'dead';
  IsBackup?: boolean;
  Version?: 1 | 2;
  ID?: IdInput;
}

export interface FakeHistorySeed {
  /** Unix seconds. */
  EventAt: number;
  EventType: 'sent' | 'opened' | 'clicked' | 'bounced' | 'blocked' | 'unsub' | 'spam';
  State?: string;
  Comment?: string;
  Useragent?: string;
  UseragentID?: IdInput;
}

export interface FakeClickSeed {
  ClickedAt: string | Date;
  Url: string;
  UserAgent?: string;
  ID?: IdInput;
}

export interface FakeMessageSeed {
  ID: IdInput;
  /** Kept to the second, as Mailjet gives it. */
  ArrivedAt: string | Date;
  UUID?: string;
  ContactID?: IdInput;
  ContactAlt?: string;
  CampaignID?: IdInput;
  Status?: string;
  Subject?: string;
  CustomID?: string;
  history?: FakeHistorySeed[];
  clicks?: FakeClickSeed[];
}

export interface FakeRequest {
  method: string;
  /** The path without the query, e.g. `/v3/REST/message`. */
  path: string;
  /** The resource path below /v3/REST, e.g. `eventcallbackurl/12`. */
  resource: string;
  query: Record<string, string>;
  receivedAt: number;
  /** What the fake answered; undefined while it has not. */
  status?: number;
}

export interface FakeCallbackRow {
  ID: bigint;
  APIKeyID: bigint;
  EventType: string;
  Url: string;
  Status: 'alive' | 'dead';
  IsBackup: boolean;
  Version: number;
}

interface ScriptedAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

interface HistoryRow {
  EventAt: number;
  EventType: string;
  State: string;
  Comment: string;
  Useragent: string;
  UseragentID: bigint;
}

interface ClickRow {
  MessageID: bigint;
  ContactID: bigint;
  Url: string;
  UserAgent: string;
  ClickedAt: string;
  ClickedDelay: number;
  ID: bigint;
  clickedAtSeconds: number;
}

interface MessageRow {
  ID: bigint;
  UUID: string;
  ArrivedAt: string;
  arrivedAtSeconds: number;
  ContactID: bigint;
  ContactAlt: string;
  CampaignID: bigint;
  Status: string;
  Subject: string;
  CustomID: string;
  history: HistoryRow[];
}

interface ContactsListRow {
  ID: bigint;
  Name: string;
  Address: string;
  CreatedAt: string;
  IsDeleted: boolean;
  SubscriberCount: number;
}

class FakeError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 1000;
const MAX_REQUEST_BYTES = 1024 * 1024;
const PAGING = ['Limit', 'Offset'];
const CALLBACK_FIELDS = ['EventType', 'Url', 'Status', 'IsBackup', 'Version'];
const SHOW_FLAGS = ['ShowSubject', 'ShowContactAlt', 'ShowCustomID'];
const FIRST_CALLBACK_ID = 9007199254740990n;
const UNAUTHORIZED_MESSAGE =
  'API key authentication/authorization failure. You may be unauthorized to access the API or your API key may be expired.';
const FIRST_CLICK_ID = 9007199254740000n;

/** JSON text in which bigints are bare integers with all their digits: JSON.stringify cannot write them. */
function jsonText(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const fields = Object.entries(value).filter(([, field]) => field !== undefined);
    return `{${fields.map(([name, field]) => `${JSON.stringify(name)}:${jsonText(field)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

function idOf(value: IdInput): bigint {
  return BigInt(value);
}

/** RFC 3339 to the second, as Mailjet writes ArrivedAt. */
function toSecond(value: string | Date): { text: string; seconds: number } {
  const ms = new Date(value).getTime();
  if (Number.isNaN(ms)) throw new Error(`not a date: ${String(value)}`);
  const seconds = Math.floor(ms / 1000);
  return { text: new Date(seconds * 1000).toISOString().replace('.000Z', 'Z'), seconds };
}

function compareIds(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class MailjetFake {
  readonly requests: FakeRequest[] = [];
  /** Delay before every answer. */
  latencyMs = 0;
  /** Whether `FromTS` includes its own second; unverified, exclusive by default (see above). */
  fromTsInclusive = false;
  /** Whether `ToTS` includes its own second; unverified, inclusive by default. */
  toTsInclusive = true;
  /** Whether `PUT {"Status": "alive"}` alone revives a dead callback; unverified, no by default. */
  statusAliveRevives = false;
  /** The clock behind "the current day" of clickstatistics. */
  now: () => number = () => Date.now();
  /** The next id a created callback gets: just under 2^53, so that the third one is beyond it. */
  nextCallbackId = FIRST_CALLBACK_ID;

  private readonly apiKeyId: bigint;
  private readonly callbackRows = new Map<bigint, FakeCallbackRow>();
  private messageRows: MessageRow[] = [];
  private readonly messagesById = new Map<bigint, MessageRow>();
  private clickRows: ClickRow[] = [];
  private readonly contactsLists = new Map<bigint, ContactsListRow>();
  private readonly script: ScriptedAnswer[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private server?: http.Server;
  private nextClickId = FIRST_CLICK_ID;
  port = 0;

  constructor(private readonly options: MailjetFakeOptions) {
    this.apiKeyId = idOf(options.apiKeyId ?? 1234567);
  }

  /** The client's baseUrl: the origin, without /v3. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = this.port): Promise<this> {
    this.server = http.createServer((request, response) => this.receive(request, response));
    this.server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject).listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- test controls ----

  /** The next `times` requests (after the auth check) get this answer instead of their own. */
  answerNext(times: number, status: number, headers: Record<string, string> = {}, body?: string): void {
    for (let i = 0; i < times; i++) this.script.push({ status, headers, body });
  }

  /** The next `times` requests are answered as usual, but only after `ms`: a client's timeout can end them. */
  delayNext(times: number, ms: number): void {
    for (let i = 0; i < times; i++) this.script.push({ delayMs: ms });
  }

  /** Requests to a resource (`message`, or `eventcallbackurl/12`), by method. */
  requestsTo(resource: string, method = 'GET'): FakeRequest[] {
    return this.requests.filter((request) => request.resource === resource && request.method === method);
  }

  addCallback(seed: FakeCallbackSeed): string {
    const id = seed.ID === undefined ? this.nextCallbackId++ : idOf(seed.ID);
    this.callbackRows.set(id, {
      ID: id,
      APIKeyID: this.apiKeyId,
      EventType: seed.EventType,
      Url: seed.Url,
      Status: seed.Status ?? 'alive',
      IsBackup: seed.IsBackup ?? false,
      Version: seed.Version ?? 1,
    });
    return id.toString();
  }

  /** What Mailjet does to a URL that keeps failing. */
  suspendCallback(id: IdInput): void {
    const row = this.callbackRows.get(idOf(id));
    if (!row) throw new Error(`no callback ${String(id)}`);
    row.Status = 'dead';
  }

  /** The callback rows as the fake holds them, by ID. */
  callbacks(): FakeCallbackRow[] {
    return [...this.callbackRows.values()].sort((a, b) => compareIds(a.ID, b.ID)).map((row) => ({ ...row }));
  }

  addMessages(seeds: FakeMessageSeed[]): void {
    for (const seed of seeds) {
      const id = idOf(seed.ID);
      if (this.messagesById.has(id)) throw new Error(`message ${id} seeded twice`);
      const arrived = toSecond(seed.ArrivedAt);
      const message: MessageRow = {
        ID: id,
        UUID: seed.UUID ?? `00000000-0000-4000-8000-${(id % 10n ** 12n).toString().padStart(12, '0')}`,
        ArrivedAt: arrived.text,
        arrivedAtSeconds: arrived.seconds,
        ContactID: idOf(seed.ContactID ?? 1),
        ContactAlt: seed.ContactAlt ?? `contact-${id}@example.com`,
        CampaignID: idOf(seed.CampaignID ?? 0),
        Status: seed.Status ?? 'sent',
        Subject: seed.Subject ?? `Subject of ${id}`,
        CustomID: seed.CustomID ?? '',
        history: (seed.history ?? []).map((event) => ({
          EventAt: event.EventAt,
          EventType: event.EventType,
          State: event.State ?? '',
          Comment: event.Comment ?? '',
          Useragent: event.Useragent ?? '',
          UseragentID: idOf(event.UseragentID ?? 0),
        })),
      };
      this.messagesById.set(id, message);
      this.messageRows.push(message);
      for (const click of seed.clicks ?? []) {
        const clicked = toSecond(click.ClickedAt);
        this.clickRows.push({
          MessageID: id,
          ContactID: message.ContactID,
          Url: click.Url,
          UserAgent: click.UserAgent ?? '',
          ClickedAt: clicked.text,
          ClickedDelay: clicked.seconds - arrived.seconds,
          ID: click.ID === undefined ? this.nextClickId++ : idOf(click.ID),
          clickedAtSeconds: clicked.seconds,
        });
      }
    }
    // Mailjet's order is not documented: the fake answers by arrival, then id, so that pages are stable.
    this.messageRows.sort((a, b) => a.arrivedAtSeconds - b.arrivedAtSeconds || compareIds(a.ID, b.ID));
    this.clickRows.sort((a, b) => a.clickedAtSeconds - b.clickedAtSeconds || compareIds(a.ID, b.ID));
  }

  addContactsList(seed: { ID: IdInput; Name: string }): void {
    const id = idOf(seed.ID);
    this.contactsLists.set(id, {
      ID: id,
      Name: seed.Name,
      Address: `list${id}`,
      CreatedAt: '2024-01-01T00:00:00Z',
      IsDeleted: false,
      SubscriberCount: 0,
    });
  }

  /** Back to a fresh fake: no rows, no script, every option at its default. */
  reset(): void {
    this.requests.length = 0;
    this.script.length = 0;
    this.latencyMs = 0;
    this.fromTsInclusive = false;
    this.toTsInclusive = true;
    this.statusAliveRevives = false;
    this.now = () => Date.now();
    this.nextCallbackId = FIRST_CALLBACK_ID;
    this.nextClickId = FIRST_CLICK_ID;
    this.callbackRows.clear();
    this.messageRows = [];
    this.messagesById.clear();
    this.clickRows = [];
    this.contactsLists.clear();
  }

  // ---- HTTP ----

  private receive(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
    });
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://fake');
      const logged: FakeRequest = {
        method: request.method ?? 'GET',
        path: url.pathname,
        resource: url.pathname.replace(/^\/v3\/REST\//, ''),
        query: Object.fromEntries(url.searchParams),
        receivedAt: Date.now(),
      };
      this.requests.push(logged);
      const send = (status: number, body: string, headers: Record<string, string> = {}) => {
        logged.status = status;
        if (response.destroyed || response.writableEnded) return; // the client gave up waiting
        const type = body === '' ? {} : { 'content-type': 'application/json' };
        response.writeHead(status, { ...type, ...headers }).end(body);
      };
      const { status, body, headers, delayMs } = this.answer(request, url, Buffer.concat(chunks), size);
      const wait = delayMs + this.latencyMs;
      if (wait === 0) return send(status, body, headers);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        send(status, body, headers);
      }, wait);
      this.timers.add(timer);
    });
  }

  private answer(
    request: http.IncomingMessage,
    url: URL,
    body: Buffer,
    size: number,
  ): { status: number; body: string; headers?: Record<string, string>; delayMs: number } {
    const expected = `Basic ${Buffer.from(`${this.options.apiKey}:${this.options.apiSecret}`, 'utf8').toString('base64')}`;
    if (request.headers.authorization !== expected) {
      return { ...this.error(401, UNAUTHORIZED_MESSAGE), delayMs: 0 };
    }
    const scripted = this.script.shift() ?? {};
    if (scripted.status !== undefined) {
      return {
        status: scripted.status,
        body: scripted.body ?? jsonText({ ErrorInfo: '', ErrorMessage: 'scripted', StatusCode: scripted.status }),
        headers: scripted.headers,
        delayMs: scripted.delayMs ?? 0,
      };
    }
    try {
      if (size > MAX_REQUEST_BYTES) throw new FakeError(413, 'Request too large');
      return { ...this.route(request.method ?? 'GET', url, body), delayMs: scripted.delayMs ?? 0 };
    } catch (error) {
      if (error instanceof FakeError) return { ...this.error(error.status, error.message), delayMs: scripted.delayMs ?? 0 };
      // A bug in the fake: a 500 that names it, so that the test fails on it rather than on a symptom.
      return { ...this.error(500, `fake failed: ${(error as Error).stack}`), delayMs: 0 };
    }
  }

  private error(status: number, message: string): { status: number; body: string } {
    return { status, body: jsonText({ ErrorInfo: '', ErrorMessage: message, StatusCode: status }) };
  }

  private route(method: string, url: URL, body: Buffer): { status: number; body: string } {
    const match = /^\/v3\/REST\/([a-z]+)(?:\/([^/]+))?\/?$/i.exec(url.pathname);
    if (!match) throw new FakeError(400, `Unknown resource: "${url.pathname}"`);
    const resource = match[1].toLowerCase();
    const rawId = match[2];
    const id = rawId === undefined ? undefined : this.pathId(decodeURIComponent(rawId));
    const query = url.searchParams;
    switch (`${method} ${resource}${id === undefined ? '' : '/{ID}'}`) {
      case 'GET eventcallbackurl':
        return this.listCallbacks(query);
      case 'GET eventcallbackurl/{ID}':
        this.allowOnly(query, []);
        return this.one(this.callbackRow(id!));
      case 'POST eventcallbackurl':
        this.allowOnly(query, []);
        return this.createCallback(this.bodyObject(body));
      case 'PUT eventcallbackurl/{ID}':
        this.allowOnly(query, []);
        return this.updateCallback(id!, this.bodyObject(body));
      case 'DELETE eventcallbackurl/{ID}':
        this.allowOnly(query, []);
        this.callbackRow(id!);
        this.callbackRows.delete(id!);
        return { status: 204, body: '' };
      case 'GET message':
        return this.listMessages(query);
      case 'GET message/{ID}': {
        this.allowOnly(query, SHOW_FLAGS);
        const message = this.messagesById.get(id!);
        if (!message) throw new FakeError(404, 'Object not found');
        return this.one(this.messageOut(message, query));
      }
      case 'GET messagehistory':
        throw new FakeError(400, 'messagehistory is read by MessageID: /messagehistory/{MessageID}');
      case 'GET messagehistory/{ID}': {
        this.allowOnly(query, PAGING);
        const message = this.messagesById.get(id!);
        if (!message) throw new FakeError(404, 'Object not found');
        return this.page(message.history.map((event) => ({ ...event })), query);
      }
      case 'GET clickstatistics':
        return this.listClicks(query);
      case 'GET contactslist/{ID}': {
        this.allowOnly(query, []);
        const list = this.contactsLists.get(id!);
        if (!list) throw new FakeError(404, 'Object not found');
        return this.one({ ...list });
      }
      default:
        if (['eventcallbackurl', 'message', 'messagehistory', 'clickstatistics', 'contactslist'].includes(resource)) {
          throw new FakeError(405, `Method ${method} not allowed on ${resource}${id === undefined ? '' : '/{ID}'}`);
        }
        throw new FakeError(400, `Unknown resource: "${resource}"`);
    }
  }

  // ---- resources ----

  private listCallbacks(query: URLSearchParams): { status: number; body: string } {
    this.allowOnly(query, [...PAGING, 'EventType', 'Status', 'Version', 'Backup', 'IsBackup']);
    const eventType = query.get('EventType');
    const status = query.get('Status');
    const version = query.has('Version') ? this.integerParam(query, 'Version') : undefined;
    const backupParam = query.has('Backup') ? 'Backup' : query.has('IsBackup') ? 'IsBackup' : undefined;
    const backup = backupParam === undefined ? undefined : this.booleanParam(query, backupParam);
    const rows = this.callbacks().filter(
      (row) =>
        (eventType === null || row.EventType === eventType) &&
        (status === null || row.Status === status) &&
        (version === undefined || row.Version === version) &&
        (backup === undefined || row.IsBackup === backup),
    );
    return this.page(rows, query);
  }

  private createCallback(body: Record<string, unknown>): { status: number; body: string } {
    this.checkCallbackFields(body);
    if (typeof body.EventType !== 'string') throw new FakeError(400, 'EventType is mandatory');
    if (typeof body.Url !== 'string') throw new FakeError(400, 'Url is mandatory');
    const candidate: FakeCallbackRow = {
      ID: this.nextCallbackId,
      APIKeyID: this.apiKeyId,
      EventType: body.EventType,
      Url: body.Url,
      Status: (body.Status as 'alive' | 'dead' | undefined) ?? 'alive',
      IsBackup: (body.IsBackup as boolean | undefined) ?? false,
      Version: (body.Version as number | undefined) ?? 1,
    };
    this.refuseClash(candidate);
    this.nextCallbackId++;
    this.callbackRows.set(candidate.ID, candidate);
    return { status: 201, body: jsonText({ Count: 1, Total: 1, Data: [{ ...candidate }] }) };
  }

  private updateCallback(id: bigint, body: Record<string, unknown>): { status: number; body: string } {
    const row = this.callbackRow(id);
    this.checkCallbackFields(body);
    const updated: FakeCallbackRow = { ...row, ...(body as Partial<FakeCallbackRow>) };
    const newUrl = body.Url !== undefined && body.Url !== row.Url;
    if (row.Status === 'dead' && updated.Status === 'alive' && !newUrl && !this.statusAliveRevives) updated.Status = 'dead';
    if (row.Status === 'dead' && newUrl && body.Status !== 'dead') updated.Status = 'alive';
    this.refuseClash(updated);
    const changed = CALLBACK_FIELDS.some((field) => updated[field as keyof FakeCallbackRow] !== row[field as keyof FakeCallbackRow]);
    // Mailjet: "304 Not Modified: the PUT request didn't affect any record".
    if (!changed) return { status: 304, body: '' };
    this.callbackRows.set(id, updated);
    return { status: 200, body: jsonText({ Count: 1, Total: 1, Data: [{ ...updated }] }) };
  }

  private checkCallbackFields(body: Record<string, unknown>): void {
    for (const [field, value] of Object.entries(body)) {
      if (!CALLBACK_FIELDS.includes(field)) throw new FakeError(400, `Invalid property "${field}" for EventCallbackUrl`);
      const valid =
        field === 'EventType'
          ? (MAILJET_EVENT_TYPES as readonly unknown[]).includes(value)
          : field === 'Url'
            ? typeof value === 'string' && /^https?:\/\/\S+$/.test(value)
            : field === 'Status'
              ? value === 'alive' || value === 'dead'
              : field === 'IsBackup'
                ? typeof value === 'boolean'
                : value === 1 || value === 2;
      if (!valid) throw new FakeError(400, `Invalid value for "${field}": ${JSON.stringify(value)}`);
    }
  }

  private refuseClash(candidate: FakeCallbackRow): void {
    const clash = [...this.callbackRows.values()].find(
      (row) => row.ID !== candidate.ID && row.EventType === candidate.EventType && row.IsBackup === candidate.IsBackup,
    );
    if (clash) {
      const key = `EventType "${candidate.EventType}" and IsBackup ${candidate.IsBackup}`;
      throw new FakeError(400, `An EventCallbackUrl for ${key} already exists (ID ${clash.ID})`);
    }
  }

  private callbackRow(id: bigint): FakeCallbackRow {
    const row = this.callbackRows.get(id);
    if (!row) throw new FakeError(404, 'Object not found');
    return row;
  }

  private listMessages(query: URLSearchParams): { status: number; body: string } {
    this.allowOnly(query, [...PAGING, 'FromTS', 'ToTS', ...SHOW_FLAGS]);
    const inWindow = this.timeWindow(query);
    const rows = this.messageRows.filter((message) => inWindow(message.arrivedAtSeconds));
    return this.page(rows.map((message) => this.messageOut(message, query)), query);
  }

  private messageOut(message: MessageRow, query: URLSearchParams): unknown {
    const show = (flag: string) => query.has(flag) && this.booleanParam(query, flag);
    return {
      ID: message.ID,
      UUID: message.UUID,
      ArrivedAt: message.ArrivedAt,
      ContactID: message.ContactID,
      ContactAlt: show('ShowContactAlt') ? message.ContactAlt : '',
      CampaignID: message.CampaignID,
      Status: message.Status,
      Subject: show('ShowSubject') ? message.Subject : undefined,
      CustomID: show('ShowCustomID') ? message.CustomID : undefined,
      // Some of the fields Mailjet adds, so that a client is seen to cope with more than it reads.
      MessageSize: 2048,
      SenderID: 50000000001n,
      StatePermanent: false,
      IsOpenTracked: true,
    };
  }

  private listClicks(query: URLSearchParams): { status: number; body: string } {
    this.allowOnly(query, [...PAGING, 'MessageID', 'FromTS', 'ToTS']);
    const messageId = query.has('MessageID') ? this.pathId(query.get('MessageID')!) : undefined;
    let inWindow = this.timeWindow(query);
    if (!query.has('FromTS') && !query.has('ToTS')) {
      const dayStart = Math.floor(this.now() / 86_400_000) * 86_400;
      inWindow = (seconds) => seconds >= dayStart && seconds < dayStart + 86_400;
    }
    const rows = this.clickRows.filter(
      (click) => (messageId === undefined || click.MessageID === messageId) && inWindow(click.clickedAtSeconds),
    );
    return this.page(rows.map(({ clickedAtSeconds: _, ...click }) => click), query);
  }

  private timeWindow(query: URLSearchParams): (seconds: number) => boolean {
    const from = query.has('FromTS') ? this.integerParam(query, 'FromTS') : undefined;
    const to = query.has('ToTS') ? this.integerParam(query, 'ToTS') : undefined;
    return (seconds) =>
      (from === undefined || (this.fromTsInclusive ? seconds >= from : seconds > from)) &&
      (to === undefined || (this.toTsInclusive ? seconds <= to : seconds < to));
  }

  // ---- envelope and parameters ----

  private page(rows: unknown[], query: URLSearchParams): { status: number; body: string } {
    const { limit, offset } = this.limitOffset(query);
    const page = rows.slice(offset, offset + limit);
    return { status: 200, body: jsonText({ Count: page.length, Total: rows.length, Data: page }) };
  }

  private one(row: unknown): { status: number; body: string } {
    return { status: 200, body: jsonText({ Count: 1, Total: 1, Data: [row] }) };
  }

  private limitOffset(query: URLSearchParams): { limit: number; offset: number } {
    const limit = query.has('Limit') ? this.integerParam(query, 'Limit') : DEFAULT_LIMIT;
    const offset = query.has('Offset') ? this.integerParam(query, 'Offset') : 0;
    if (limit < 1) throw new FakeError(400, `Invalid Limit: ${limit}`);
    if (offset < 0) throw new FakeError(400, `Invalid Offset: ${offset}`);
    // Above the maximum the fake answers the maximum, silently: a client must not trust a larger Limit.
    return { limit: Math.min(limit, MAX_LIMIT), offset };
  }

  private allowOnly(query: URLSearchParams, allowed: string[]): void {
    for (const name of query.keys()) {
      if (!allowed.includes(name)) throw new FakeError(400, `Invalid filter "${name}"`);
    }
  }

  private integerParam(query: URLSearchParams, name: string): number {
    const text = query.get(name)!;
    if (!/^-?\d+$/.test(text)) throw new FakeError(400, `Invalid value for ${name}: "${text}"`);
    return Number(text);
  }

  private booleanParam(query: URLSearchParams, name: string): boolean {
    const text = query.get(name)!.toLowerCase();
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    throw new FakeError(400, `Invalid value for ${name}: "${text}"`);
  }

  private pathId(text: string): bigint {
    if (!/^\d{1,20}$/.test(text)) throw new FakeError(400, `Invalid ID: "${text}"`);
    return BigInt(text);
  }

  private bodyObject(body: Buffer): Record<string, unknown> {
    let parsed: unknown;
    try {
      parsed = parseJsonExact(body.toString('utf8'));
    } catch {
      throw new FakeError(400, 'Invalid JSON body');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new FakeError(400, 'The body must be a JSON object');
    return parsed as Record<string, unknown>;
  }
}
