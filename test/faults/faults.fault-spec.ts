import { randomBytes } from 'node:crypto';
import http from 'node:http';
import IORedis from 'ioredis';
import { TestDatabase } from '../support/database';
import { SegmentSink } from '../support/segment-sink';
import { TcpProxy } from '../support/tcp-proxy';
import {
  ADMIN_TOKEN,
  SECRETS_KEY,
  SEGMENT_WRITE_KEY,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
  WEBHOOK_PASSWORD,
  WEBHOOK_USER,
  basicAuth,
} from '../support/test-env';
import { waitFor } from '../support/wait-for';
import { MAILJET_EVENTS_QUEUE } from '@app/queue';
import { DEFAULT_SOURCE_ID } from '@app/sources';
import { acceptedBy, combined, FaultRow, measure, PostedEvents, SourceUnderTest, waitUntilSettled } from './invariants';
import { CallbackTarget, DEFAULT_CALLBACK, generateEvents, MailjetLikeClient, splitBetween } from './mailjet-client';
import { OwnedRedis } from './owned-redis';
import { ProductProcess } from './product-process';
import { writeReliabilityReport } from './report';

/** A fault lasts this long by definition; this is the fault, not a wait for a result. */
const holdFault = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const SECOND_WRITE_KEY = 'fault-suite-second-write-key';

/** A source of the faults, with the credentials its Mailjet account posts with. */
interface FaultSource extends SourceUnderTest {
  target: CallbackTarget;
  user: string;
  password: string;
}

describe('no event lost, none forwarded twice, under faults', () => {
  const db = new TestDatabase();
  const sink = new SegmentSink(SEGMENT_WRITE_KEY);
  /** The destination of the second source, which each fault creates through the admin API. */
  const secondSink = new SegmentSink(SECOND_WRITE_KEY);
  const defaultSource: FaultSource = {
    name: 'default',
    id: DEFAULT_SOURCE_ID,
    sink,
    target: DEFAULT_CALLBACK,
    user: WEBHOOK_USER,
    password: WEBHOOK_PASSWORD,
  };
  const postgres = new TcpProxy({ host: '127.0.0.1', port: 5432 });
  const redis = new TcpProxy({ host: '127.0.0.1', port: 6379 });
  const rows: FaultRow[] = [];
  const notes: string[] = [];
  let running: ProductProcess[] = [];
  let ownedRedis: OwnedRedis | undefined;
  let nextMessageId = 1152921505370435042n;

  const newEvents = (count: number) => {
    const events = generateEvents(nextMessageId, count);
    nextMessageId += BigInt(count);
    return events;
  };

  function environment(): Record<string, string> {
    const url = new URL(TEST_DATABASE_URL);
    url.host = `127.0.0.1:${postgres.port}`;
    return {
      DATABASE_URL: url.toString(),
      REDIS_URL: redis.url('redis'),
      MAILJET_WEBHOOK_USER: WEBHOOK_USER,
      MAILJET_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD,
      ADMIN_TOKEN,
      SECRETS_KEY,
      SEGMENT_WRITE_KEY,
      SEGMENT_HOST: sink.url,
      SEGMENT_MAX_ATTEMPTS: '20',
      SEGMENT_BACKOFF_MS: '100',
      QUEUE_PREFIX: queuePrefix(),
      LOG_LEVEL: 'warn',
    };
  }

  const queuePrefixes: string[] = [];
  function queuePrefix(): string {
    const prefix = `fault-${randomBytes(4).toString('hex')}`;
    queuePrefixes.push(prefix);
    return prefix;
  }

  /** The machine's Redis outlives the suite: its jobs (about 10,000 keys a run) go with it. */
  async function removeQueues(): Promise<void> {
    const client = new IORedis(TEST_REDIS_URL);
    try {
      for (const prefix of queuePrefixes) {
        for await (const keys of client.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
          if (keys.length > 0) await client.unlink(...keys);
        }
      }
    } finally {
      client.disconnect();
    }
  }

  /** Processes of one deployment: pass the `env` of a running one to add processes to it. */
  async function startProducts(apis: number, workers: number, env = environment()) {
    const started = await Promise.all([
      ...Array.from({ length: apis }, () => ProductProcess.start('api', env)),
      ...Array.from({ length: workers }, () => ProductProcess.start('worker', env)),
    ]);
    running.push(...started);
    return { apis: started.filter((p) => p.kind === 'api'), workers: started.filter((p) => p.kind === 'worker'), env };
  }

  /**
   * The default source and a second one, made through the admin API of the first api as an
   * operator would, with its own sink; returns once every api knows the second (the others hear
   * of it through PostgreSQL). Call it while PostgreSQL is reachable.
   */
  async function twoSources(apis: ProductProcess[]): Promise<[FaultSource, FaultSource]> {
    const response = await fetch(`${apis[0].url}/admin/sources`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ name: 'second', destination: { preset: 'custom', host: secondSink.url, writeKey: SECOND_WRITE_KEY } }),
    });
    if (response.status !== 201) throw new Error(`POST /admin/sources answered ${response.status}: ${await response.text()}`);
    const created = (await response.json()) as { id: number; slug: string; webhook: { user: string; password: string } };
    const { user, password } = created.webhook;
    const second: FaultSource = {
      name: 'second',
      id: created.id,
      sink: secondSink,
      target: { path: `/webhooks/mailjet/${created.slug}`, authorization: basicAuth(user, password) },
      user,
      password,
    };
    // An api that knows a source refuses a callback without its credentials (401); one that does not answers 404.
    await Promise.all(
      apis.map((api) =>
        waitFor(`api ${api.port} to know the second source`, async () => {
          const probe = await fetch(`${api.url}${second.target.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
          return probe.status === 401;
        }),
      ),
    );
    return [defaultSource, second];
  }

  /** The invariants, for each source on its own events; the rows go to docs/RELIABILITY.md. */
  async function check(fault: string, posted: PostedEvents, startedAt: number, workerCrashed = false): Promise<FaultRow[]> {
    await waitUntilSettled(db);
    const measured = await measure(fault, db, posted, startedAt, workerCrashed);
    rows.push(...measured);
    for (const row of measured) {
      expect(row.posted).toBeGreaterThan(0);
      // One expectation with the source in it, so that a failure says whose events broke which invariant.
      expect(row).toMatchObject({
        source: row.source,
        stored: row.posted,
        forwarded: row.posted,
        acceptedByItsSink: row.posted,
        acceptedByAnotherSink: 0,
        lost: 0,
        forwardedTwice: 0,
        failuresWithoutReason: 0,
        unforwarded: 0,
        failed: 0,
      });
    }
    return measured;
  }

  beforeAll(async () => {
    await Promise.all([postgres.start(), redis.start(), sink.start(), secondSink.start()]);
  });
  beforeEach(async () => {
    await db.reset();
    sink.reset();
    secondSink.reset();
  });
  afterEach(async () => {
    // What the processes said, for a failed fault.
    const state = expect.getState();
    if (state.assertionCalls > 0 && state.numPassingAsserts < state.assertionCalls) {
      for (const product of running) console.log(`${product.kind} ${product.port} running=${product.running}\n${product.log.slice(-30).join('\n')}`);
    }
    await Promise.all(running.map((p) => p.stop('SIGKILL')));
    running = [];
    await ownedRedis?.stop();
    ownedRedis = undefined;
    if (!redis.listening) await redis.restore();
    if (!postgres.listening) await postgres.restore();
    if (!sink.listening) await sink.start();
    if (!secondSink.listening) await secondSink.start();
  });
  afterAll(async () => {
    writeReliabilityReport(rows, notes);
    await Promise.all([postgres.stop(), redis.stop(), sink.stop(), secondSink.stop()]);
    await removeQueues();
    await db.close();
  });

  it("1. the default source's Segment refuses connections for 20 s, then answers 500, then 429 with Retry-After, then recovers; the second's stays up", async () => {
    const startedAt = Date.now();
    const { apis } = await startProducts(1, 1);
    const sources = await twoSources(apis);
    const second = sources[1];
    const client = new MailjetLikeClient(() => apis.map((a) => a.url));
    const { callbacks, posted } = splitBetween(sources, newEvents(500), 25);
    await sink.refuseConnections();
    await client.deliverAll(callbacks, 4);
    const lastCallbackAt = Date.now();
    const refusing = holdFault(20000);
    // What sources promise: one destination's outage holds back no other source's events.
    const secondEvents = posted.get(second)!;
    await waitFor(
      "the second source's events to reach its sink while the default's refuses connections",
      () => acceptedBy(secondSink, secondEvents) === secondEvents.length,
      { timeoutMs: 15000 },
    );
    notes.push(
      `Segment down (fault 1): the second source's ${secondEvents.length} events all reached its own sink ` +
        `${((Date.now() - lastCallbackAt) / 1000).toFixed(1)} s after the last callback, while the default source's sink refused connections.`,
    );
    await refusing;
    await sink.start();
    sink.standingAnswer = { status: 500, body: 'internal error' };
    await holdFault(5000);
    sink.standingAnswer = { status: 429, headers: { 'Retry-After': '1' } };
    await holdFault(5000);
    sink.standingAnswer = undefined;
    await check("default's Segment down 20 s, then 500, then 429; second's up", posted, startedAt);
  });

  /** One api and one worker take `count` events while `proxy` is cut for `outageMs`, starting after `afterBodies` bodies. */
  async function ingestThroughOutage(proxy: TcpProxy, count: number, afterBodies: number, outageMs: number) {
    const { apis } = await startProducts(1, 1);
    const sources = await twoSources(apis);
    const client = new MailjetLikeClient(() => apis.map((a) => a.url));
    const { callbacks, posted } = splitBetween(sources, newEvents(count), 10);
    let outage: Promise<void> | undefined;
    await client
      .deliverAll(callbacks, 4, (done) => {
        if (done === afterBodies) outage = proxy.cut().then(() => holdFault(outageMs)).then(() => proxy.restore());
      })
      .catch((error: Error) => {
        throw new Error(`${error.message}; api running=${apis[0].running}: ${apis[0].log.slice(-15).join(' | ')}`);
      });
    await outage;
    return { client, posted };
  }

  it('2. Redis unreachable for 15 s in the middle of a 2,000-event ingest', async () => {
    const startedAt = Date.now();
    const { posted } = await ingestThroughOutage(redis, 2000, 60, 15000);
    await check('Redis unreachable 15 s during ingest', posted, startedAt);
  });

  it('3. PostgreSQL unreachable for 10 s during ingest: 503, retried, no partial rows', async () => {
    const startedAt = Date.now();
    const { client, posted } = await ingestThroughOutage(postgres, 1000, 20, 10000);
    expect(client.stats.statuses['503']).toBeGreaterThan(0);
    await check('PostgreSQL unreachable 10 s during ingest', posted, startedAt);
  });

  it('4. worker killed with SIGKILL while jobs are active, then restarted', async () => {
    const startedAt = Date.now();
    const { apis, workers } = await startProducts(1, 1);
    const sources = await twoSources(apis);
    const client = new MailjetLikeClient(() => apis.map((a) => a.url));
    const { callbacks, posted } = splitBetween(sources, newEvents(1000), 20);
    sink.latencyMs = 100;
    secondSink.latencyMs = 100;
    const ingest = client.deliverAll(callbacks, 4);
    await waitFor('the worker to be forwarding to both sinks', () => sink.batches.length >= 2 && secondSink.batches.length >= 2);
    await workers[0].stop('SIGKILL');
    await workers[0].start();
    await ingest;
    await check('worker SIGKILL with active jobs, restarted', posted, startedAt, true);
  });

  it('5. api killed with SIGKILL while requests are in flight, then restarted', async () => {
    const startedAt = Date.now();
    const { apis } = await startProducts(1, 1);
    const sources = await twoSources(apis);
    const client = new MailjetLikeClient(() => apis.map((a) => a.url));
    const { callbacks, posted } = splitBetween(sources, newEvents(1000), 10);
    let restarted: Promise<void> | undefined;
    await client.deliverAll(callbacks, 8, (done) => {
      if (done === 30) restarted = apis[0].stop('SIGKILL').then(() => apis[0].start());
    });
    await restarted;
    expect(client.stats.statuses['no answer']).toBeGreaterThan(0);
    await check('api SIGKILL with requests in flight, restarted', posted, startedAt);
  });

  it('6. SIGTERM to api and worker under load (a rolling deploy)', async () => {
    const startedAt = Date.now();
    const first = await startProducts(1, 1);
    const sources = await twoSources(first.apis);
    const apiPool = [...first.apis];
    const client = new MailjetLikeClient(() => apiPool.filter((a) => a.running).map((a) => a.url));
    const { callbacks, posted } = splitBetween(sources, newEvents(1500), 10);
    sink.latencyMs = 20;
    secondSink.latencyMs = 20;
    let deploy: Promise<void> | undefined;
    await client.deliverAll(callbacks, 6, (done) => {
      if (done !== 40) return;
      deploy = (async () => {
        const next = await startProducts(1, 1, first.env);
        apiPool.push(...next.apis);
        // Started with the image's command and stopped as `docker stop` does: SIGTERM to that process alone.
        const stopped = [first.apis[0], first.workers[0]];
        const exits = await Promise.all(stopped.map((product) => product.stop('SIGTERM')));
        // Nest re-raises the signal once its shutdown hooks are done: a clean exit shows as SIGTERM.
        for (const exit of exits) expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
        // The signal reached the app: nothing it started outlives it (npm -> sh -> node leaves node running).
        expect(stopped.flatMap((product) => product.leftovers())).toEqual([]);
      })();
    });
    await deploy;
    await check('SIGTERM to api and worker under load (rolling deploy)', posted, startedAt);
  });

  it('7. three api and three worker processes, the same events posted to different apis at once', async () => {
    const startedAt = Date.now();
    const { apis } = await startProducts(3, 3);
    const sources = await twoSources(apis);
    const { callbacks, posted } = splitBetween(sources, newEvents(600), 10);
    // Each callback goes to all three apis concurrently: three deliveries of every event, to its source's URL.
    await Promise.all(
      apis.map((api) => new MailjetLikeClient(() => [api.url]).deliverAll(callbacks, 3)),
    );
    const measured = await check('3 apis + 3 workers, every event posted to all 3 at once', posted, startedAt);
    for (const row of measured) expect(row.duplicates).toBe(2 * row.posted);
  });

  it('8. at least 1,000 malformed requests: the right status every time, no crash, memory back to baseline', async () => {
    const startedAt = Date.now();
    const { apis } = await startProducts(1, 1);
    const api = apis[0];
    const sources = await twoSources(apis);
    const client = new MailjetLikeClient(() => [api.url]);
    const warmUp = splitBetween(sources, newEvents(200), 10);
    await client.deliverAll(warmUp.callbacks, 4);
    const baseline = api.rssBytes();

    // Each source's URL gets the whole set, with its own credentials gone wrong and the other's.
    const [first, second] = sources;
    const perSource = [malformedRequests(first, second), malformedRequests(second, first)];
    for (const requests of perSource) expect(requests.length).toBeGreaterThanOrEqual(1000);
    const cases = [...perSource.flat(), ...unknownSourceRequests(sources)];
    const wrong: string[] = [];
    let index = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (index < cases.length) {
          const request = cases[index++];
          const status = await post(`${api.url}${request.path}`, request);
          if (status !== request.expected) wrong.push(`${request.path} ${request.name}: ${status}, expected ${request.expected}`);
        }
      }),
    );
    expect(wrong).toEqual([]);
    expect(api.running).toBe(true);
    expect((await fetch(`${api.url}/health/ready`)).status).toBe(200);

    // Valid traffic still flows afterwards.
    const after = splitBetween(sources, newEvents(200), 10);
    await client.deliverAll(after.callbacks, 4);
    const peak = api.rssBytes();
    const settledRss = await waitFor(
      'the api to return to its memory baseline',
      () => {
        const rss = api.rssBytes();
        return rss <= baseline + 64 * 2 ** 20 ? rss : undefined;
      },
      { timeoutMs: 30000, intervalMs: 500 },
    );
    notes.push(
      `Malformed input: ${cases.length} requests to both sources' URLs and an unknown one ` +
        `(${[...new Set(cases.map((c) => c.expected))].sort().join(', ')} expected), ` +
        `${wrong.length} answered wrongly; api RSS ${mb(baseline)} before, ${mb(peak)} right after, ${mb(settledRss)} settled.`,
    );
    await check('1,000+ malformed requests per source (valid ones before and after)', combined(warmUp.posted, after.posted), startedAt);
  });

  it('9. Redis restarted empty in the middle of a load: every queued job gone at once', async () => {
    const startedAt = Date.now();
    ownedRedis = await new OwnedRedis().start();
    const redisUrl = ownedRedis.url;
    // A short sweep age, so that the api looks for vanished jobs within seconds instead of minutes.
    const env: Record<string, string> = { ...environment(), REDIS_URL: redisUrl, QUEUE_SWEEP_AFTER_SECONDS: '5' };
    const { apis } = await startProducts(1, 1, env);
    const sources = await twoSources(apis);
    const client = new MailjetLikeClient(() => apis.map((a) => a.url));
    const { callbacks, posted } = splitBetween(sources, newEvents(2000), 10);
    // Slow destinations keep a backlog of waiting jobs for the restart to wipe out.
    sink.latencyMs = 300;
    secondSink.latencyMs = 300;
    let restart: Promise<number> | undefined;
    await client.deliverAll(callbacks, 4, (done) => {
      if (done !== 80) return;
      restart = (async () => {
        const queued = await db.count("status = 'queued'");
        await ownedRedis!.restartEmpty();
        return queued;
      })();
    });
    const queuedAtRestart = await restart!;
    // The fault is real: events were queued when their jobs vanished.
    expect(queuedAtRestart).toBeGreaterThan(100);
    await check('Redis restarted empty mid-load (a Redis of its own)', posted, startedAt).catch(async (error: Error) => {
      throw new Error(`${error.message}; ${await stuckEvents(redisUrl, env.QUEUE_PREFIX)}`);
    });
    notes.push(`Redis restarted empty: ${queuedAtRestart} events were queued when their jobs vanished.`);
  });

  /** Why events are still queued: whether their jobs still exist in Redis. */
  async function stuckEvents(redisUrl: string, prefix: string): Promise<string> {
    const rows = await db.query<{ id: string; job_id: string }>(
      "select id::text as id, job_id from mailjet_events where status = 'queued'",
    );
    const client = new IORedis(redisUrl, { maxRetriesPerRequest: 1 });
    try {
      let withoutJob = 0;
      for (const { job_id: jobId } of rows) {
        if ((await client.exists(`${prefix}:${MAILJET_EVENTS_QUEUE}:${jobId}`)) === 0) withoutJob++;
      }
      return `${rows.length} events still queued, ${withoutJob} of them without a job in Redis`;
    } finally {
      client.disconnect();
    }
  }
});

const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;

/**
 * Posts a body and resolves with the status as soon as the answer arrives. A body over the limit
 * is answered 413 from its Content-Length, while the client is still uploading, and the api then
 * closes the connection: a client that reads only after its upload (fetch) may lose the answer to
 * the reset that follows; this one reads it when it comes, as Mailjet's would have to.
 */
function post(url: string, request: MalformedRequest): Promise<number | string> {
  return new Promise((resolve) => {
    const outgoing = http.request(url, { method: 'POST', headers: request.headers }, (response) => {
      resolve(response.statusCode ?? 'no status');
      response.resume();
    });
    outgoing.on('error', (error) => resolve(`no answer (${error.message})`));
    outgoing.end(request.body);
  });
}

interface MalformedRequest {
  /** The callback path it goes to: a source's, or an unknown one. */
  path: string;
  name: string;
  headers: Record<string, string>;
  body: string | Buffer;
  expected: number;
}

const VALID_EVENT = '{"event":"open","time":1764000000,"MessageID":19421777835146491,"email":"a@example.com"}';

/**
 * Generated bad input to `source`'s callback URL: every request must get its status, and none may
 * crash the api. Its credentials gone wrong are refused, and so are `other`'s, which are right elsewhere.
 */
function malformedRequests(source: FaultSource, other: FaultSource): MalformedRequest[] {
  const { path, authorization } = source.target;
  const json = { 'content-type': 'application/json', authorization };
  const valid = VALID_EVENT;
  const cases: MalformedRequest[] = [];
  const add = (name: string, body: string | Buffer, expected: number, headers: Record<string, string> = json) =>
    cases.push({ path, name, body, expected, headers });

  for (let cut = 1; cut < valid.length; cut += 1) add(`truncated at ${cut}`, valid.slice(0, cut), 400);
  const junk = ['{', '}', '[', ']', ',', ':', '"', 'nul', 'tru', '{"a":}', '{"a" 1}', "{'a':1}", '[1,]', '{"a":1,}', 'NaN', '01', '--1', '\u0000'];
  for (const text of junk) add(`invalid JSON ${JSON.stringify(text)}`, text, 400);
  for (const value of ['1', '"x"', 'true', 'null', '[]', '[1]', '["a"]', '[null]', '[[]]', '[{}, 2]', '[true, {}]']) {
    add(`not an object or array of objects: ${value}`, value, 400);
  }
  // Wrong types for every field: stored as invalid (200) or, where still usable, as valid.
  const fields = ['event', 'time', 'MessageID', 'email', 'Message_GUID', 'url', 'Payload', 'CustomID', 'mj_campaign_id'];
  const wrongValues = ['null', 'true', '[]', '{}', '-1', '1.5', '"x"', '""', '1e400', '"\\u0000"', `"${'x'.repeat(5000)}"`];
  for (const field of fields) {
    for (const value of wrongValues) {
      const base = JSON.parse(valid.replace('19421777835146491', '"19421777835146491"'));
      const body = JSON.stringify({ ...base, [field]: '__VALUE__' }).replace('"__VALUE__"', value);
      add(`${field} = ${value.slice(0, 20)}`, body, 200);
    }
  }
  for (let depth of [10, 100, 1000, 5000]) add(`nested ${depth} deep`, `${'['.repeat(depth)}${']'.repeat(depth)}`, 400);
  add('object nested 5000 deep', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, 400);
  add('event with a field nested 20 deep', valid.replace('}', `,"x":${'['.repeat(20)}${']'.repeat(20)}}`), 200);
  add('huge string field', JSON.stringify({ event: 'open', time: 1764000000, MessageID: 1, email: 'a@b.c', comment: 'x'.repeat(5 * 2 ** 20) }), 200);
  add('raw NUL byte', `{"event":"open","email":"a\u0000b"}`, 400);
  add('escaped NUL bytes', '{"event":"open\\u0000","time":1,"email":"\\u0000","MessageID":0}', 200);
  add('one byte over the limit', Buffer.alloc(10 * 2 ** 20 + 1, 0x20), 413);
  add('far over the limit', Buffer.alloc(12 * 2 ** 20, 0x20), 413);
  add('empty body', '', 400);
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
    add(`content type ${type}`, valid, 415, { ...json, 'content-type': type });
  }
  const credentials: Array<[string, string | undefined]> = [
    ['missing', undefined],
    ['wrong password', basicAuth(source.user, 'nope')],
    ['wrong user', basicAuth('someone', source.password)],
    ['password with ":"', basicAuth(source.user, 'p@ss:')],
    ['non-ASCII', basicAuth('ü', 'ö:ä')],
    ['bearer', 'Bearer x'],
    ['not base64', 'Basic %%%'],
    ['empty', 'Basic '],
    ['no scheme', Buffer.from(`${source.user}:${source.password}`).toString('base64')],
    [`of the ${other.name} source`, other.target.authorization],
  ];
  for (const [name, authorization] of credentials) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    for (let i = 0; i < 20; i++) add(`credentials ${name} #${i}`, valid, 401, headers);
  }
  // Fill up to well over 1,000 with random corruptions of a valid body.
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  while (cases.length < 1200) {
    const at = Math.floor(random() * valid.length);
    const corrupted = valid.slice(0, at) + '{["\\'.charAt(Math.floor(random() * 4)) + valid.slice(at + 1);
    let expected = 400;
    try {
      const parsed: unknown = JSON.parse(corrupted);
      expected = typeof parsed === 'object' && parsed !== null ? 200 : 400;
    } catch {
      expected = 400;
    }
    add(`corruption #${cases.length}`, corrupted, expected);
  }
  return cases;
}

/** Callbacks to a slug no source has: 404 whatever the credentials, a known source's included. */
function unknownSourceRequests(sources: FaultSource[]): MalformedRequest[] {
  const path = '/webhooks/mailjet/nosuchsource0000';
  const authorizations: Array<[string, string | undefined]> = [
    ['no credentials', undefined],
    ...sources.map((source): [string, string] => [`the ${source.name} source's credentials`, source.target.authorization]),
  ];
  return authorizations.flatMap(([name, authorization]) =>
    Array.from({ length: 20 }, (_, i) => ({
      path,
      name: `unknown source, ${name} #${i}`,
      body: VALID_EVENT,
      expected: 404,
      headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    })),
  );
}
