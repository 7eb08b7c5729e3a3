import { MAILJET_EVENT_TYPES } from '@app/mailjet';
import { MailjetCallbacks } from '../apps/api/src/mailjet-rest/mailjet-callbacks.service';
import { ApiHarness } from './support/api-harness';
import { TestDatabase } from './support/database';
import { MailjetFake } from './support/mailjet-fake';
import { testConfig, WEBHOOK_PASSWORD, WEBHOOK_USER } from './support/test-env';

const PUBLIC_URL = 'https://bridge.example.com';
const MAILJET_KEYS = { apiKey: 'mj-public-key', apiSecret: 'mj-secret-key-0123' };
// The default source's callback, with its credentials (the test password has ':' and 'ö' in it).
const OURS = `https://${WEBHOOK_USER}:${encodeURIComponent(WEBHOOK_PASSWORD)}@bridge.example.com/webhooks/mailjet/default`;

describe("Mailjet's callbacks as desired state (api + PostgreSQL + a local Mailjet fake)", () => {
  const db = new TestDatabase();
  const mailjet = new MailjetFake(MAILJET_KEYS);
  let api: ApiHarness;

  const ensure = async (body: object = {}) => {
    const response = await api.admin('POST', '/admin/sources/default/mailjet/callbacks', body);
    expect(response.statusCode).toBe(200);
    return response.json().callbacks as Array<{ eventType: string; action: string; status: string }>;
  };
  const actions = (callbacks: Array<{ eventType: string; action: string }>) =>
    Object.fromEntries(callbacks.map((callback) => [callback.eventType, callback.action]));
  const changesMade = () => mailjet.requests.filter((request) => request.method !== 'GET').length;

  beforeAll(async () => {
    await mailjet.start();
    api = await ApiHarness.start(
      testConfig({ MAILJET_API_KEY: MAILJET_KEYS.apiKey, MAILJET_API_SECRET: MAILJET_KEYS.apiSecret, MAILJET_API_URL: mailjet.url, PUBLIC_URL }),
    );
  });
  beforeEach(async () => {
    await api.reset(db);
    mailjet.reset();
  });
  afterAll(async () => {
    await api.close();
    await mailjet.stop();
    await db.close();
  });

  it('creates the seven callbacks, grouped, with the credentials and the source in the URL; the same again changes nothing', async () => {
    const first = await ensure();
    expect(first).toEqual(MAILJET_EVENT_TYPES.map((eventType) => ({ eventType, action: 'created', status: 'alive' })));
    const rows = mailjet.callbacks();
    expect(rows).toHaveLength(7);
    for (const row of rows) expect(row).toMatchObject({ Url: OURS, Version: 2, Status: 'alive', IsBackup: false });
    expect(mailjet.requestsTo('eventcallbackurl')[0].query.Limit).toBe('1000');

    const writes = changesMade();
    expect(actions(await ensure())).toEqual(Object.fromEntries(MAILJET_EVENT_TYPES.map((type) => [type, 'unchanged'])));
    expect(changesMade()).toBe(writes);
  });

  it('leaves a callback that points elsewhere alone (conflict) unless asked to replace it', async () => {
    const elsewhere = mailjet.addCallback({ EventType: 'sent', Url: 'https://other-tool.example.com/mailjet', Version: 1 });
    const callbacks = await ensure();
    expect(callbacks.find((c) => c.eventType === 'sent')).toEqual({
      eventType: 'sent',
      action: 'conflict',
      status: 'alive',
      url: 'https://other-tool.example.com/mailjet',
    });
    expect(mailjet.callbacks().find((row) => row.ID === BigInt(elsewhere))?.Url).toBe('https://other-tool.example.com/mailjet');

    const replaced = await ensure({ replace: true });
    expect(actions(replaced).sent).toBe('updated');
    expect(mailjet.callbacks().find((row) => row.ID === BigInt(elsewhere))).toMatchObject({ Url: OURS, Version: 2 });
  });

  it('re-arms a suspended (dead) callback by changing its URL, and the periodic check reports it until then', async () => {
    await ensure();
    const open = mailjet.callbacks().find((row) => row.EventType === 'open')!;
    mailjet.suspendCallback(open.ID);

    await api.app.get(MailjetCallbacks).checkAll();
    const status = (await api.admin('GET', '/admin/status')).json();
    expect(status.mailjet.callbacks).toEqual([expect.objectContaining({ source: 'default', dead: ['open'], missing: [] })]);

    const callbacks = await ensure();
    expect(callbacks.find((c) => c.eventType === 'open')).toEqual({ eventType: 'open', action: 'updated', status: 'alive' });
    const rearmed = mailjet.callbacks().find((row) => row.ID === open.ID)!;
    expect(rearmed.Status).toBe('alive');
    expect(new URL(rearmed.Url).searchParams.get('rearm')).toMatch(/^[0-9a-z]+$/);
    // The re-armed URL is still ours: the next ensure leaves it.
    expect(actions(await ensure()).open).toBe('unchanged');
    expect((await api.admin('GET', '/admin/status')).json().mailjet.callbacks[0].dead).toEqual([]);
  });

  it('reads every row: with 12, where a read without Limit would see 10, nothing is created twice', async () => {
    for (const eventType of ['sent', 'open', 'click', 'bounce', 'blocked']) {
      mailjet.addCallback({ EventType: eventType, Url: 'https://backup.example.com/mailjet', IsBackup: true });
    }
    for (const eventType of MAILJET_EVENT_TYPES) mailjet.addCallback({ EventType: eventType, Url: OURS, Version: 2 });
    expect(mailjet.callbacks()).toHaveLength(12);
    expect(actions(await ensure())).toEqual(Object.fromEntries(MAILJET_EVENT_TYPES.map((type) => [type, 'unchanged'])));
    expect(mailjet.callbacks()).toHaveLength(12);
  });

  it("counts the default source's plain /webhooks/mailjet (the manual set-up's URL) as its own", async () => {
    const plain = `https://${WEBHOOK_USER}:${encodeURIComponent(WEBHOOK_PASSWORD)}@bridge.example.com/webhooks/mailjet`;
    for (const eventType of MAILJET_EVENT_TYPES) mailjet.addCallback({ EventType: eventType, Url: plain, Version: 2 });
    expect(actions(await ensure())).toEqual(Object.fromEntries(MAILJET_EVENT_TYPES.map((type) => [type, 'unchanged'])));
    const listed = (await api.admin('GET', '/admin/sources/default/mailjet/callbacks')).json().callbacks;
    expect(listed.every((row: { ours: boolean }) => row.ours)).toBe(true);
  });

  it('lists the callbacks as Mailjet has them, with passwords masked', async () => {
    await ensure();
    mailjet.addCallback({ EventType: 'open', Url: 'https://someone:their-secret@backup.example.com/x?token=their-token', IsBackup: true });
    const response = await api.admin('GET', '/admin/sources/default/mailjet/callbacks');
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain(encodeURIComponent(WEBHOOK_PASSWORD));
    expect(response.body).not.toContain('their-secret');
    expect(response.body).not.toContain('their-token');
    const backup = response.json().callbacks.find((row: { isBackup: boolean }) => row.isBackup);
    expect(backup).toMatchObject({ eventType: 'open', url: 'https://someone:***@backup.example.com/x?token=***', ours: false });
    expect(response.json().callbacks.filter((row: { ours: boolean }) => row.ours)).toHaveLength(7);
  });

  it("answers 502 with Mailjet's reason, never its keys, when Mailjet refuses; 409 for a source without keys", async () => {
    mailjet.answerNext(1, 401, {}, `{"ErrorMessage":"API key authentication/authorization failure: ${MAILJET_KEYS.apiKey}"}`);
    const refused = await api.admin('POST', '/admin/sources/default/mailjet/callbacks', {});
    expect(refused.statusCode).toBe(502);
    expect(refused.json().message).toContain('Mailjet answered 401');
    expect(refused.body).not.toContain(MAILJET_KEYS.apiKey);
    expect(refused.body).not.toContain(MAILJET_KEYS.apiSecret);

    const created = await api.admin('POST', '/admin/sources', { name: 'no keys', destination: { preset: 'segment-us', writeKey: 'k' } });
    const withoutKeys = await api.admin('POST', `/admin/sources/${created.json().slug}/mailjet/callbacks`, {});
    expect(withoutKeys.statusCode).toBe(409);
    expect(withoutKeys.json().message).toContain('has no Mailjet API keys');
  });
});
