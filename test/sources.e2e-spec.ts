import { SourceDirectory } from '@app/sources';
import { TestDatabase } from './support/database';
import { PipelineHarness } from './support/pipeline-harness';
import { SegmentSink } from './support/segment-sink';
import { ApiHarness } from './support/api-harness';
import { WorkerHarness } from './support/worker-harness';
import { basicAuth, SEGMENT_WRITE_KEY, testConfig, WEBHOOK_PASSWORD, WEBHOOK_USER } from './support/test-env';
import { waitFor } from './support/wait-for';

/** What POST /admin/sources answers. */
interface CreatedSource {
  id: number;
  slug: string;
  name: string;
  webhook: { url: string; user: string; password: string };
  destination: { preset: string; host: string };
}

/** One Mailjet event of its own (its MessageID too): its email names it, so that a test can follow it to a sink. */
let messageNumber = 0;
function event(name: string): string {
  return `{"event":"open","time":1433103519,"MessageID":${19421777396190490n + BigInt(++messageNumber)},"email":"${name}@example.com"}`;
}

const emailsOf = (sink: SegmentSink) => sink.accepted.map((call) => (call.context as { traits: { email: string } }).traits.email).sort();

describe('sources: several Mailjet accounts, each to its own destination (api + worker + PostgreSQL + Redis + local sinks)', () => {
  const db = new TestDatabase();
  let pipeline: PipelineHarness;
  const sinks: SegmentSink[] = [];

  /** A sink that accepts only `writeKey`, as a destination does. */
  async function sinkFor(writeKey: string): Promise<SegmentSink> {
    const sink = await new SegmentSink(writeKey).start();
    sinks.push(sink);
    return sink;
  }

  async function createSource(name: string, destination: Record<string, unknown>, mailjet?: object): Promise<CreatedSource> {
    const response = await pipeline.api.admin('POST', '/admin/sources', { name, destination, ...(mailjet ? { mailjet } : {}) });
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  /** A callback to the source's own URL, with its credentials unless others are given. */
  function post(source: CreatedSource, body: string, authorization = basicAuth(source.webhook.user, source.webhook.password)) {
    return pipeline.api.postWebhook(body, { url: `/webhooks/mailjet/${source.slug}`, authorization });
  }

  beforeAll(async () => {
    pipeline = await PipelineHarness.start(db, { WEBHOOK_PASSWORD_GRACE_HOURS: '0.001' });
  });
  beforeEach(async () => {
    await pipeline.reset(db);
    // The api's cache forgets the sources the reset deleted before the test makes new ones.
    await pipeline.api.app.get(SourceDirectory).reload();
  });
  afterAll(async () => {
    await pipeline.close();
    for (const sink of sinks) await sink.stop();
    await db.close();
  });

  it("forwards each source's events only to its own destination, with its write key, deduplicating per source", async () => {
    const [sinkA, sinkB] = [await sinkFor('write-key-a'), await sinkFor('write-key-b')];
    const a = await createSource('EU marketing', { preset: 'custom', host: sinkA.url, writeKey: 'write-key-a' });
    const b = await createSource('US transactional', { preset: 'rudderstack', host: sinkB.url, writeKey: 'write-key-b' });
    expect(a.webhook.url).toMatch(new RegExp(`/webhooks/mailjet/${a.slug}$`));
    expect(a.slug).toMatch(/^[a-z0-9]{16}$/);
    expect(a.slug).not.toBe(b.slug);

    const same = event('same-event');
    expect((await post(a, `[${same},${event('only-a')}]`)).json()).toEqual({ received: 2, accepted: 2, invalid: 0 });
    expect((await post(b, `[${same},${event('only-b')}]`)).statusCode).toBe(200);
    expect((await post(a, same)).statusCode).toBe(200); // the same event to the same source: a duplicate

    const events = await db.settled(5);
    // The source's URL takes the body as text too: MessageIDs beyond 2^53 keep every digit.
    expect(events.map((e) => e.message_id)).toContain((19421777396190490n + BigInt(messageNumber)).toString());
    expect(events.map((e) => e.status).sort()).toEqual(['duplicate', 'forwarded', 'forwarded', 'forwarded', 'forwarded']);
    await waitFor('both sinks to have their events', () => sinkA.accepted.length === 2 && sinkB.accepted.length === 2);
    expect(emailsOf(sinkA)).toEqual(['only-a@example.com', 'same-event@example.com']);
    expect(emailsOf(sinkB)).toEqual(['only-b@example.com', 'same-event@example.com']);
    // Two sources, two events: Segment's own dedupe must not drop one for the other.
    const messageIdOf = (sink: SegmentSink) => sink.accepted.find((call) => JSON.stringify(call).includes('same-event'))!.messageId;
    expect(messageIdOf(sinkA)).not.toBe(messageIdOf(sinkB));
    expect(pipeline.sink.accepted).toEqual([]); // nothing went to the default source's destination

    const listed = await pipeline.api.admin('GET', `/admin/events?source=${a.slug}`);
    expect(listed.json().items.map((item: { source: string }) => item.source)).toEqual([a.slug, a.slug, a.slug]);
    const status = (await pipeline.api.admin('GET', `/admin/status?source=${b.slug}`)).json();
    expect(status.events.byStatus).toMatchObject({ forwarded: 2, duplicate: 0 });
    const sourceA = (await pipeline.api.admin('GET', `/admin/sources/${a.slug}`)).json();
    expect(sourceA.events).toMatchObject({ forwarded: 2, duplicate: 1, queued: 0 });
  });

  it('keeps POST /webhooks/mailjet as the default source, configured by the environment', async () => {
    expect((await pipeline.api.postWebhook(event('default'))).statusCode).toBe(200);
    expect((await pipeline.api.postWebhook(event('default-by-slug'), { url: '/webhooks/mailjet/default' })).statusCode).toBe(200);
    await db.settled(2);
    expect(emailsOf(pipeline.sink)).toEqual(['default-by-slug@example.com', 'default@example.com']);

    const sources = (await pipeline.api.admin('GET', '/admin/sources')).json().items;
    expect(sources).toEqual([
      expect.objectContaining({ slug: 'default', configuredBy: 'environment', destination: { preset: 'custom', host: pipeline.sink.url } }),
    ]);
    expect(sources[0].events.forwarded).toBe(2);
    const change = await pipeline.api.admin('PATCH', '/admin/sources/default', { destination: { preset: 'segment-eu', writeKey: 'x' } });
    expect(change.statusCode).toBe(409);
    expect(change.json().message).toContain('SEGMENT_WRITE_KEY');
    expect((await pipeline.api.admin('DELETE', '/admin/sources/default')).statusCode).toBe(409);
    expect((await pipeline.api.admin('POST', '/admin/sources/default/webhook-password')).statusCode).toBe(409);
  });

  it.each([
    ['segment-us', { preset: 'segment-us' }],
    ['segment-eu', { preset: 'segment-eu' }],
    ['rudderstack', { preset: 'rudderstack' }],
    ['jitsu', { preset: 'jitsu' }],
    ['custom', { preset: 'custom' }],
  ])('delivers through the %s preset (host overridden by the local sink)', async (preset, destination) => {
    const sink = await sinkFor(`key-${preset}`);
    const source = await createSource(preset, { ...destination, host: sink.url, writeKey: `key-${preset}` });
    expect(source.destination).toEqual({ preset, host: sink.url });
    expect((await post(source, event(preset))).statusCode).toBe(200);
    await db.settled(1);
    expect(emailsOf(sink)).toEqual([`${preset}@example.com`]);
  });

  it('gives the Segment presets their hosts, and requires one for the data planes', async () => {
    const us = await createSource('us', { preset: 'segment-us', writeKey: 'k' });
    const eu = await createSource('eu', { preset: 'segment-eu', writeKey: 'k' });
    expect(us.destination.host).toBe('https://api.segment.io');
    expect(eu.destination.host).toBe('https://events.eu1.segmentapis.com');
    for (const preset of ['rudderstack', 'jitsu', 'custom']) {
      const response = await pipeline.api.admin('POST', '/admin/sources', { name: 'x', destination: { preset, writeKey: 'k' } });
      expect(response.statusCode).toBe(400);
      expect(response.json().message).toContain('destination.host is required');
    }
    for (const destination of [
      { preset: 'segment-x', writeKey: 'k' },
      { preset: 'custom', host: 'ftp://sink', writeKey: 'k' },
      { preset: 'custom', host: 'https://user:pass@sink', writeKey: 'k' },
      { preset: 'custom', host: 'https://sink' },
    ]) {
      expect((await pipeline.api.admin('POST', '/admin/sources', { name: 'x', destination })).statusCode).toBe(400);
    }
    expect((await pipeline.api.admin('POST', '/admin/sources', { name: 'x', destination: { preset: 'segment-us', writeKey: 'k' }, extra: 1 })).statusCode).toBe(400);
  });

  it('sends to a data plane under a path prefix at <host>/<prefix>/v1/batch', async () => {
    const sink = await sinkFor('prefixed-key');
    sink.basePath = '/data-plane';
    const source = await createSource('prefixed', { preset: 'rudderstack', host: `${sink.url}/data-plane/`, writeKey: 'prefixed-key' });
    expect(source.destination.host).toBe(`${sink.url}/data-plane`);
    await post(source, event('prefixed'));
    await db.settled(1);
    expect(emailsOf(sink)).toEqual(['prefixed@example.com']);
  });

  it('refuses malformed source bodies with 400 and a reason, and stores nothing', async () => {
    const source = await createSource('valid', { preset: 'segment-us', writeKey: 'k' });
    const cases: Array<[string, string, object, RegExp]> = [
      ['POST', '/admin/sources', { name: 'x' }, /destination is required/],
      ['POST', '/admin/sources', { name: 'x', destination: [{ preset: 'custom', host: 'http://a', writeKey: 'k' }] }, /destination must be an object/],
      ['POST', '/admin/sources', { name: 'x', destination: { preset: 'segment-us', writeKey: 'k' }, mailjet: [{ apiKey: 'a', apiSecret: 'b' }] }, /mailjet must be an object/],
      ['POST', '/admin/sources', { name: 'x', destination: { preset: 'segment-us', writeKey: 'k\u0001' } }, /destination.writeKey must not contain control characters/],
      ['POST', '/admin/sources', { name: 'x', destination: { preset: 'custom', host: 'https://sink/?', writeKey: 'k' } }, /query or a fragment/],
      ['PATCH', `/admin/sources/${source.slug}`, { name: null }, /name/],
      ['PATCH', `/admin/sources/${source.slug}`, { paused: null }, /paused/],
      ['PATCH', `/admin/sources/${source.slug}`, { destination: { preset: 'custom', host: 'http://a', writeKey: null } }, /writeKey/],
      ['PATCH', '/admin/sources/Not_A_Slug', { name: 'x' }, /slug must be the slug of a source/],
    ];
    for (const [method, url, body, reason] of cases) {
      const response = await pipeline.api.inject({
        method: method as 'POST',
        url,
        headers: { authorization: `Bearer ${pipeline.api.config.adminToken}`, 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
      expect({ url, body, status: response.statusCode }).toEqual({ url, body, status: 400 });
      expect(JSON.stringify(response.json().message)).toMatch(reason);
    }
    const deep = await pipeline.api.inject({
      method: 'POST',
      url: '/admin/sources',
      headers: { authorization: `Bearer ${pipeline.api.config.adminToken}`, 'content-type': 'application/json' },
      payload: `${'['.repeat(50_000)}${']'.repeat(50_000)}`,
    });
    expect(deep.statusCode).toBe(400);
    expect(deep.json().message).toContain('nests more than 32 levels');
    expect((await pipeline.api.admin('GET', '/admin/sources')).json().items).toHaveLength(2);
  });

  it('an api whose SECRETS_KEY does not open a new source answers 503 for it, and says so in readiness', async () => {
    // Started before the source exists: at start, it would refuse to run at all.
    const other = await ApiHarness.start(testConfig({ SECRETS_KEY: 'ab'.repeat(32) }));
    try {
      const source = await createSource('unreadable', { preset: 'segment-us', writeKey: 'k' });
      const url = `/webhooks/mailjet/${source.slug}`;
      const authorization = basicAuth(source.webhook.user, source.webhook.password);
      await waitFor('the other api to read the new source', async () => (await other.postWebhook(event('x'), { url, authorization })).statusCode === 503);
      const ready = await other.get('/health/ready');
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.sources.error).toContain(source.slug);
      expect((await other.postWebhook(event('default-still-works'))).statusCode).toBe(200);
    } finally {
      await other.close();
    }
  });

  it("a worker whose SECRETS_KEY does not open a source leaves its events queued with the reason; a worker that can, sends them", async () => {
    await pipeline.worker.close();
    // Started before the source exists: at start, it would refuse to run at all.
    const wrongKey = await WorkerHarness.start(testConfig({ SECRETS_KEY: 'ab'.repeat(32), QUEUE_PREFIX: pipeline.api.config.queuePrefix }));
    const sink = await sinkFor('unreadable-key');
    try {
      const source = await createSource('unreadable to the worker', { preset: 'custom', host: sink.url, writeKey: 'unreadable-key' });
      await post(source, event('waits'));
      const [waiting] = await waitFor('the reason on the waiting event', async () => {
        const rows = await db.query<{ status: string; last_error: string | null; attempts: number }>('select status::text, last_error, attempts from mailjet_events');
        return rows[0]?.last_error ? rows : undefined;
      });
      expect(waiting).toEqual({ status: 'queued', attempts: 0, last_error: `waiting: this worker cannot open the secrets of source ${source.slug} (SECRETS_KEY)` });
      const listed = (await pipeline.api.admin('GET', '/admin/events?status=queued')).json().items;
      expect(listed[0].lastError).toContain('cannot open the secrets');
    } finally {
      await wrongKey.close();
      await pipeline.startWorker();
    }
    // The turned-away job waits 30 s before it is tried again; a worker restarted with the right key would too.
    await pipeline.api.queue.promoteJobs();
    await db.settled(1);
    expect(emailsOf(sink)).toEqual(['waits@example.com']);
    expect((await db.query<{ last_error: string | null }>('select last_error from mailjet_events'))[0].last_error).toBeNull();
  });

  it('removes the Mailjet keys of a source with "mailjet": null', async () => {
    const source = await createSource('keys', { preset: 'segment-us', writeKey: 'k' }, { apiKey: 'public-key', apiSecret: 'secret-key' });
    expect((await pipeline.api.admin('GET', `/admin/sources/${source.slug}`)).json().mailjet).toEqual({ configured: true });
    const removed = await pipeline.api.admin('PATCH', `/admin/sources/${source.slug}`, { mailjet: null });
    expect(removed.statusCode).toBe(200);
    expect(removed.json().mailjet).toBeNull();
  });

  it('moves a source to another destination: the next events go there, with the new write key', async () => {
    const [segment, rudderstack] = [await sinkFor('segment-key'), await sinkFor('rudder-key')];
    const source = await createSource('moving', { preset: 'segment-eu', host: segment.url, writeKey: 'segment-key' });
    await post(source, event('before'));
    await db.settled(1);
    const moved = await pipeline.api.admin('PATCH', `/admin/sources/${source.slug}`, {
      destination: { preset: 'rudderstack', host: rudderstack.url, writeKey: 'rudder-key' },
    });
    expect(moved.statusCode).toBe(200);
    expect(moved.json().destination).toEqual({ preset: 'rudderstack', host: rudderstack.url });
    await post(source, event('after'));
    await db.settled(2);
    expect(emailsOf(segment)).toEqual(['before@example.com']);
    expect(emailsOf(rudderstack)).toEqual(['after@example.com']);
  });

  describe('callback authentication', () => {
    it("answers 401 for a wrong password, another source's credentials or the default's, and 404 for an unknown slug", async () => {
      const [a, b] = [await createSource('a', { preset: 'segment-us', writeKey: 'k' }), await createSource('b', { preset: 'segment-us', writeKey: 'k' })];
      for (const authorization of [
        basicAuth(a.webhook.user, 'wrong'),
        basicAuth(b.webhook.user, b.webhook.password),
        basicAuth(WEBHOOK_USER, WEBHOOK_PASSWORD),
        '',
      ]) {
        const response = await post(a, event('refused'), authorization);
        expect(response.statusCode).toBe(401);
        expect(response.headers['www-authenticate']).toMatch(/^Basic /);
      }
      for (const authorization of [basicAuth(a.webhook.user, a.webhook.password), '']) {
        const response = await pipeline.api.postWebhook(event('unknown'), { url: '/webhooks/mailjet/nosuchsource0000', authorization });
        expect(response.statusCode).toBe(404);
      }
      expect(await db.count()).toBe(0);
    });

    it('keeps the previous password valid for the grace window after a rotation, then refuses it', async () => {
      const sink = await sinkFor('rotating-key');
      const source = await createSource('rotating', { preset: 'custom', host: sink.url, writeKey: 'rotating-key' });
      const rotated = await pipeline.api.admin('POST', `/admin/sources/${source.slug}/webhook-password`);
      expect(rotated.statusCode).toBe(200);
      const { webhook, previousPasswordValidUntil } = rotated.json();
      expect(webhook.password).not.toBe(source.webhook.password);
      expect(webhook.password.length).toBeGreaterThanOrEqual(22); // 128 bits and more, URL-safe
      expect(webhook.password).toMatch(/^[A-Za-z0-9_-]+$/);
      // WEBHOOK_PASSWORD_GRACE_HOURS is 0.001 here: 3.6 s.
      expect(Date.parse(previousPasswordValidUntil) - Date.now()).toBeLessThanOrEqual(3600);

      const withNew = { ...source, webhook };
      expect((await post(withNew, event('new-password'))).statusCode).toBe(200);
      expect((await post(source, event('old-password-in-grace'))).statusCode).toBe(200);
      await waitFor('the previous password to expire', async () => (await post(source, event('old-password-late'))).statusCode === 401);
      expect((await post(withNew, event('new-password-still'))).statusCode).toBe(200);
      const shown = (await pipeline.api.admin('GET', `/admin/sources/${source.slug}`)).json();
      expect(shown.webhook.passwordRotatedAt).not.toBeNull();
      // What the grace window let in is forwarded like any other event.
      expect((await db.settled()).every((e) => e.status === 'forwarded')).toBe(true);
    });

    it('answers 404 for a deleted source, whose events stay queryable; 409 while it has events to forward', async () => {
      const sink = await sinkFor('deleted-key');
      const source = await createSource('short-lived', { preset: 'custom', host: sink.url, writeKey: 'deleted-key' });
      expect((await pipeline.api.admin('PATCH', `/admin/sources/${source.slug}`, { paused: true })).json().paused).toBe(true);
      expect((await post(source, event('waits'))).statusCode).toBe(200);
      await waitFor('the event to be parked', async () => (await db.events())[0]?.job_id === 'paused');

      const refused = await pipeline.api.admin('DELETE', `/admin/sources/${source.slug}`);
      expect(refused.statusCode).toBe(409);
      expect(refused.json().message).toContain('events to forward');

      await pipeline.api.admin('PATCH', `/admin/sources/${source.slug}`, { paused: false });
      await db.settled(1);
      expect((await pipeline.api.admin('DELETE', `/admin/sources/${source.slug}`)).statusCode).toBe(204);
      expect((await post(source, event('after-delete'))).statusCode).toBe(404);
      expect((await pipeline.api.admin('GET', `/admin/sources/${source.slug}`)).statusCode).toBe(404);
      expect((await pipeline.api.admin('GET', '/admin/sources')).json().items.map((s: { slug: string }) => s.slug)).toEqual(['default']);
      const kept = (await pipeline.api.admin('GET', `/admin/events?source=${source.slug}`)).json().items;
      expect(kept).toEqual([expect.objectContaining({ source: source.slug, status: 'forwarded', email: 'waits@example.com' })]);
    });
  });

  it('stores the events of a paused source, keeps them queued (not forwarded) and forwards them once it is resumed', async () => {
    const sink = await sinkFor('paused-key');
    const source = await createSource('paused', { preset: 'custom', host: sink.url, writeKey: 'paused-key' });
    await pipeline.api.admin('PATCH', `/admin/sources/${source.slug}`, { paused: true });
    const body = `[${Array.from({ length: 150 }, (_, i) => event(`paused-${i}`)).join(',')}]`;
    expect((await post(source, body)).json()).toEqual({ received: 150, accepted: 150, invalid: 0 });
    await waitFor('every event to be parked', async () => (await db.events()).every((e) => e.job_id === 'paused' && e.status === 'queued'));
    expect(sink.requests).toBe(0);
    const requeue = await pipeline.api.admin('POST', `/admin/events/${(await db.events())[0].id}/requeue`);
    expect(requeue.statusCode).toBe(409);
    expect(requeue.json().message).toContain(`waits for its source (${source.slug}) to be resumed`);

    const resumed = await pipeline.api.admin('PATCH', `/admin/sources/${source.slug}`, { paused: false });
    expect(resumed.json().paused).toBe(false);
    const events = await db.settled(150);
    expect(events.every((e) => e.status === 'forwarded')).toBe(true);
    expect(sink.accepted).toHaveLength(150);
  });

  it('keeps no secret in clear text in the database, and shows none in admin answers', async () => {
    const secrets = { writeKey: 'wk-0123456789-secret', apiSecret: 'mj-secret-9876543210' };
    const source = await createSource('secretive', { preset: 'segment-us', writeKey: secrets.writeKey }, { apiKey: 'mj-public-key', apiSecret: secrets.apiSecret });
    const rotated = (await pipeline.api.admin('POST', `/admin/sources/${source.slug}/webhook-password`)).json();
    const everySecret = [secrets.writeKey, secrets.apiSecret, source.webhook.password, rotated.webhook.password];
    // The public half of the Mailjet keys is no secret at rest, but the admin API shows neither half.
    const everyKey = [...everySecret, 'mj-public-key'];

    const [row] = await db.query<{ text: string }>(`select row_to_json(s)::text as text from sources s where slug = $1`, [source.slug]);
    expect(row.text).toContain('mj-public-key');
    for (const secret of everySecret) expect(row.text).not.toContain(secret);

    const answers = [
      await pipeline.api.admin('GET', '/admin/sources'),
      await pipeline.api.admin('GET', `/admin/sources/${source.slug}`),
      await pipeline.api.admin('PATCH', `/admin/sources/${source.slug}`, { name: 'renamed' }),
      await pipeline.api.admin('PATCH', `/admin/sources/${source.slug}`, { destination: { preset: 'segment-eu' } }),
    ];
    for (const answer of answers) {
      expect(answer.statusCode).toBe(200);
      for (const secret of everyKey) expect(answer.body).not.toContain(secret);
      expect(answer.body).not.toContain(SEGMENT_WRITE_KEY);
    }
    // The creation answer shows the webhook password (once), never the write key or the API secret.
    const created = JSON.stringify(source);
    expect(created).not.toContain(secrets.writeKey);
    expect(created).not.toContain(secrets.apiSecret);
  });
});
