import {
  ClickStatisticsRow,
  ContactsList,
  EventCallbackUrl,
  MailjetApiError,
  MailjetMessage,
  MailjetRestClient,
  MailjetRestClientOptions,
  MessageHistoryRow,
} from '@app/mailjet-api';
import { MAILJET_EVENT_TYPES } from '@app/mailjet';
import { FakeMessageSeed, MailjetFake } from './support/mailjet-fake';
import { waitFor } from './support/wait-for';

// The MailjetRestClient against a local fake of Mailjet's REST API v3 over real HTTP: paging,
// exact ids, retries and what its errors say. No database and no Redis.

const API_KEY = 'mj-test-api-key-0123456789abcdef';
const API_SECRET = 'mj-test-api-secret-fedcba9876543210';
// 2^60: Mailjet's MessageIDs sit around here, far beyond 2^53.
const FIRST_MESSAGE_ID = 1152921504606846976n;
const DAY_START = Date.UTC(2025, 0, 15) / 1000;

function messages(count: number, from = 0): FakeMessageSeed[] {
  return Array.from({ length: count }, (_, i) => ({
    ID: FIRST_MESSAGE_ID + BigInt(from + i),
    // Several messages share each second, so that paging cannot lean on distinct times.
    ArrivedAt: new Date((DAY_START + Math.floor((from + i) / 3)) * 1000),
    ContactID: 1000 + i,
    Subject: `Message ${from + i}`,
  }));
}

describe('MailjetRestClient against the Mailjet fake', () => {
  const fake = new MailjetFake({ apiKey: API_KEY, apiSecret: API_SECRET });
  const clientWith = (options: Partial<MailjetRestClientOptions> = {}) =>
    new MailjetRestClient({ baseUrl: fake.url, apiKey: API_KEY, apiSecret: API_SECRET, backoffMs: 5, ...options });

  beforeAll(async () => {
    await fake.start();
  });

  afterAll(async () => {
    await fake.stop();
  });

  beforeEach(() => {
    fake.reset();
  });

  describe('paging', () => {
    it('reads all 12 callback rows, where a read without Limit sees 10', async () => {
      for (const eventType of MAILJET_EVENT_TYPES) fake.addCallback({ EventType: eventType, Url: `https://a.example/${eventType}` });
      for (const eventType of MAILJET_EVENT_TYPES.slice(0, 5)) {
        fake.addCallback({ EventType: eventType, Url: `https://b.example/${eventType}`, IsBackup: true });
      }

      // The trap, as the fake sets it: Mailjet's default page is 10 rows, Total says 12.
      const bare = await fetch(`${fake.url}/v3/REST/eventcallbackurl`, {
        headers: { authorization: `Basic ${Buffer.from(`${API_KEY}:${API_SECRET}`).toString('base64')}` },
      });
      expect(await bare.json()).toMatchObject({ Count: 10, Total: 12 });

      fake.requests.length = 0;
      const rows = await clientWith().listAll<EventCallbackUrl>('eventcallbackurl');

      expect(rows).toHaveLength(12);
      expect(rows.filter((row) => row.IsBackup)).toHaveLength(5);
      expect(fake.requests.map((request) => request.query)).toEqual([{ Limit: '1000', Offset: '0' }]);
    });

    it('walks Offset over 2,500 messages, 1,000 at a time, and loses none', async () => {
      fake.addMessages(messages(2500));
      const client = clientWith();

      const pageSizes: number[] = [];
      const ids: string[] = [];
      for await (const page of client.pages<MailjetMessage>('message', { FromTS: DAY_START - 1, ShowSubject: true })) {
        pageSizes.push(page.length);
        ids.push(...page.map((message) => message.ID));
      }

      expect(pageSizes).toEqual([1000, 1000, 500]);
      expect(ids).toEqual(Array.from({ length: 2500 }, (_, i) => (FIRST_MESSAGE_ID + BigInt(i)).toString()));
      expect(fake.requestsTo('message').map(({ query }) => [query.Limit, query.Offset])).toEqual([
        ['1000', '0'],
        ['1000', '1000'],
        ['1000', '2000'],
      ]);
      expect(fake.requests[0].query).toMatchObject({ FromTS: String(DAY_START - 1), ShowSubject: 'true' });
    });

    it('reads once more after a full last page, and stops at the first short one', async () => {
      fake.addMessages(messages(2000));
      const rows = await clientWith().listAll<MailjetMessage>('message');
      expect(rows).toHaveLength(2000);
      expect(fake.requestsTo('message').map(({ query }) => query.Offset)).toEqual(['0', '1000', '2000']);
    });

    it('starts the walk at a given Offset, and refuses a Limit of the caller', async () => {
      fake.addMessages(messages(1500));
      const client = clientWith();
      const rows = await client.listAll<MailjetMessage>('message', { Offset: 1200 });
      expect(rows[0].ID).toBe((FIRST_MESSAGE_ID + 1200n).toString());
      expect(rows).toHaveLength(300);
      await expect(client.listAll('message', { Limit: 10 })).rejects.toThrow(/always read with Limit=1000/);
    });
  });

  describe('exact ids', () => {
    it('keeps ids beyond 2^53 digit for digit, and hands small ids over as strings too', async () => {
      const id = FIRST_MESSAGE_ID + 7n;
      fake.addMessages([
        {
          ID: id,
          ArrivedAt: new Date(DAY_START * 1000),
          ContactID: 42,
          CampaignID: 7696969696969696969n,
          ContactAlt: 'someone@example.com',
          Subject: 'Hello',
          history: [
            { EventAt: DAY_START, EventType: 'sent', UseragentID: 0 },
            { EventAt: DAY_START + 60, EventType: 'clicked', Useragent: 'Mozilla/5.0', UseragentID: 12 },
          ],
          clicks: [{ ClickedAt: new Date((DAY_START + 60) * 1000), Url: 'https://example.com/a', ID: 9007199254740993n }],
        },
      ]);
      fake.addContactsList({ ID: 10000000000000001n, Name: 'Newsletter' });
      const client = clientWith();

      const message = await client.get<MailjetMessage>('message', id.toString(), { ShowSubject: true, ShowContactAlt: true });
      expect(message).toMatchObject({
        ID: '1152921504606846983',
        ContactID: '42',
        CampaignID: '7696969696969696969',
        ContactAlt: 'someone@example.com',
        Subject: 'Hello',
        ArrivedAt: '2025-01-15T00:00:00Z',
      });
      const bare = await client.get<MailjetMessage>('message', id.toString());
      expect(bare).toMatchObject({ ContactAlt: '' });
      expect(bare).not.toHaveProperty('Subject');

      const history = await client.listAll<MessageHistoryRow>(`messagehistory/${id}`);
      expect(history).toEqual([
        expect.objectContaining({ EventAt: DAY_START, EventType: 'sent', UseragentID: '0' }),
        expect.objectContaining({ EventAt: DAY_START + 60, EventType: 'clicked', UseragentID: '12' }),
      ]);

      const clicks = await client.listAll<ClickStatisticsRow>('clickstatistics', {
        MessageID: id.toString(),
        FromTS: DAY_START - 1,
        ToTS: DAY_START + 3600,
      });
      expect(clicks).toEqual([
        expect.objectContaining({ MessageID: '1152921504606846983', ID: '9007199254740993', ContactID: '42', ClickedDelay: 60 }),
      ]);

      expect(await client.get<ContactsList>('contactslist', '10000000000000001')).toMatchObject({
        ID: '10000000000000001',
        Name: 'Newsletter',
      });
    });

    it('gives created callbacks their ids as strings on both sides of 2^53', async () => {
      const client = clientWith();
      const created = [];
      for (const eventType of ['sent', 'open', 'click'] as const) {
        const body = { EventType: eventType, Url: 'https://h.example/cb', Version: 2 };
        created.push(await client.create<EventCallbackUrl>('eventcallbackurl', body));
      }
      expect(created.map((row) => row.ID)).toEqual(['9007199254740990', '9007199254740991', '9007199254740992']);
      expect(created[0]).toEqual({
        ID: '9007199254740990',
        APIKeyID: '1234567',
        EventType: 'sent',
        Url: 'https://h.example/cb',
        Status: 'alive',
        IsBackup: false,
        Version: 2,
      });
      expect(await client.get<EventCallbackUrl>('eventcallbackurl', '9007199254740992')).toMatchObject({ EventType: 'click' });
    });
  });

  describe('retries', () => {
    it('waits out a 429 with Retry-After in the middle of a walk, then reads on without losing a row', async () => {
      fake.addMessages(messages(2500));
      const client = clientWith();
      const walk = client.pages<MailjetMessage>('message');
      const ids: string[] = [];
      const first = await walk.next();
      ids.push(...(first.value as MailjetMessage[]).map((message) => message.ID));

      fake.answerNext(1, 429, { 'retry-after': '1' });
      for await (const page of walk) ids.push(...page.map((message) => message.ID));

      expect(new Set(ids).size).toBe(2500);
      const reads = fake.requestsTo('message');
      expect(reads.map(({ query, status }) => [query.Offset, status])).toEqual([
        ['0', 200],
        ['1000', 429],
        ['1000', 200],
        ['2000', 200],
      ]);
      // backoffMs is 5: only Retry-After explains a second's wait.
      expect(reads[2].receivedAt - reads[1].receivedAt).toBeGreaterThanOrEqual(990);
    });

    it('retries 5xx on reads, and gives up after maxRetries with the last answer', async () => {
      fake.addCallback({ EventType: 'open', Url: 'https://a.example/open' });
      fake.answerNext(2, 503);
      expect(await clientWith({ maxRetries: 2 }).listAll('eventcallbackurl')).toHaveLength(1);
      expect(fake.requests.map((request) => request.status)).toEqual([503, 503, 200]);

      fake.requests.length = 0;
      fake.answerNext(3, 502, {}, '<html>Bad Gateway</html>');
      const error = await clientWith({ maxRetries: 2 })
        .listAll('eventcallbackurl')
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(MailjetApiError);
      expect(error).toMatchObject({ status: 502, attempts: 3, method: 'GET', resource: 'eventcallbackurl' });
      expect((error as Error).message).toBe('Mailjet answered 502 on GET eventcallbackurl: <html>Bad Gateway</html> (3 attempts)');
    });

    it('retries a request that timed out, and says so when none answers in time', async () => {
      fake.addCallback({ EventType: 'open', Url: 'https://a.example/open' });
      fake.delayNext(2, 2000);
      const client = clientWith({ requestTimeoutMs: 200, maxRetries: 2 });
      expect(await client.listAll('eventcallbackurl')).toHaveLength(1);
      expect(fake.requests).toHaveLength(3);

      fake.requests.length = 0;
      fake.latencyMs = 2000;
      await expect(client.listAll('eventcallbackurl')).rejects.toThrow(
        new MailjetApiError('Mailjet did not answer GET eventcallbackurl within 200 ms (3 attempts)', undefined, 'GET', 'eventcallbackurl', 3),
      );
      expect(fake.requests).toHaveLength(3);
    });

    it('retries when Mailjet cannot be reached, then names the cause', async () => {
      const closed = new MailjetFake({ apiKey: API_KEY, apiSecret: API_SECRET });
      await closed.start();
      const url = closed.url;
      await closed.stop();
      const error = await new MailjetRestClient({ baseUrl: url, apiKey: API_KEY, apiSecret: API_SECRET, maxRetries: 2, backoffMs: 1 })
        .listAll('eventcallbackurl')
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(MailjetApiError);
      expect((error as Error).message).toMatch(/^Mailjet unreachable for GET eventcallbackurl: .*ECONNREFUSED.* \(3 attempts\)$/);
    });

    it('does not retry other 4xx', async () => {
      const error = await clientWith()
        .listAll(`messagehistory/${FIRST_MESSAGE_ID}`)
        .catch((caught: unknown) => caught);
      expect(error).toMatchObject({ status: 404, attempts: 1 });
      expect((error as Error).message).toBe(`Mailjet answered 404 on GET messagehistory/${FIRST_MESSAGE_ID}: Object not found`);
      expect(fake.requests).toHaveLength(1);
    });
  });

  describe('credentials', () => {
    it('answers 401 as a MailjetApiError without the key or secret, after one request', async () => {
      const wrongSecret = 'the-wrong-secret-of-this-test';
      const client = new MailjetRestClient({ baseUrl: fake.url, apiKey: API_KEY, apiSecret: wrongSecret, backoffMs: 5 });
      const error = await client.listAll('eventcallbackurl').catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(MailjetApiError);
      expect(error).toMatchObject({ status: 401, attempts: 1 });
      expect((error as Error).message).toMatch(/^Mailjet answered 401 on GET eventcallbackurl: API key authentication\/authorization failure/);
      const everything = [(error as Error).message, (error as Error).stack, JSON.stringify(error), String(error)].join('\n');
      for (const secret of [wrongSecret, API_KEY, Buffer.from(`${API_KEY}:${wrongSecret}`).toString('base64')]) {
        expect(everything).not.toContain(secret);
      }
      expect(fake.requests).toHaveLength(1);
    });

    it('masks the key and secret when Mailjet echoes them, in every form, before cutting the quote', async () => {
      const token = Buffer.from(`${API_KEY}:${API_SECRET}`).toString('base64');
      const echo = JSON.stringify({
        ErrorInfo: `Basic ${token}`,
        ErrorMessage: `${'x'.repeat(250)} bad request for key ${API_KEY} and secret ${API_SECRET}${'y'.repeat(500)}`,
        StatusCode: 400,
      });
      fake.answerNext(1, 400, {}, echo);
      const error = await clientWith()
        .listAll('eventcallbackurl')
        .catch((caught: unknown) => caught);
      const message = (error as Error).message;
      expect(message).toContain('bad request for key ***');
      for (const secret of [API_KEY, API_SECRET, token, API_SECRET.slice(0, 8)]) expect(message).not.toContain(secret);
      expect(message.length).toBeLessThan(400);
    });

    it('masks the password of a callback URL that Mailjet quotes back, as text or JSON-escaped', async () => {
      const password = 'webhook-password-of-this-test';
      const url = `https://mailjet:${password}@bridge.example/webhooks/mailjet/abc`;
      fake.answerNext(1, 400, {}, JSON.stringify({ ErrorMessage: `Invalid Url "${url}"`, StatusCode: 400 }));
      const quoted = await clientWith()
        .create('eventcallbackurl', { EventType: 'open', Url: url, Version: 2 })
        .catch((caught: unknown) => caught);
      fake.answerNext(1, 400, {}, `<html>bad url ${JSON.stringify(url).replaceAll('/', '\\/')}</html>`);
      const raw = await clientWith()
        .create('eventcallbackurl', { EventType: 'open', Url: url, Version: 2 })
        .catch((caught: unknown) => caught);

      expect((quoted as Error).message).toContain('Invalid Url "https://mailjet:***@bridge.example/webhooks/mailjet/abc"');
      expect((raw as Error).message).toContain('mailjet:***@bridge.example');
      for (const error of [quoted, raw]) expect((error as Error).message).not.toContain(password);
    });
  });

  describe('eventcallbackurl writes', () => {
    it('refuses a second POST for the same EventType and IsBackup with 400, without retrying it', async () => {
      const client = clientWith();
      await client.create('eventcallbackurl', { EventType: 'open', Url: 'https://a.example/open', Version: 2 });
      const error = await client
        .create('eventcallbackurl', { EventType: 'open', Url: 'https://b.example/open', Version: 2 })
        .catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(MailjetApiError);
      expect(error).toMatchObject({ status: 400, method: 'POST', attempts: 1 });
      expect((error as Error).message).toMatch(/^Mailjet answered 400 on POST eventcallbackurl: .*already exists/);
      expect(fake.requestsTo('eventcallbackurl', 'POST')).toHaveLength(2);
      // A backup for the same type is another row.
      await client.create('eventcallbackurl', { EventType: 'open', Url: 'https://b.example/open', IsBackup: true });
      expect(fake.callbacks()).toHaveLength(2);
    });

    it('retries a POST after a 429, but not after a 5xx, which may have created the row', async () => {
      const client = clientWith();
      fake.answerNext(1, 429);
      await client.create('eventcallbackurl', { EventType: 'sent', Url: 'https://a.example/sent' });
      expect(fake.requests.map((request) => request.status)).toEqual([429, 201]);

      fake.requests.length = 0;
      fake.answerNext(1, 500);
      await expect(client.create('eventcallbackurl', { EventType: 'open', Url: 'https://a.example/open' })).rejects.toMatchObject({
        status: 500,
        attempts: 1,
      });
      expect(fake.requests).toHaveLength(1);
    });

    it('revives a dead row by a new Url, while Status alive alone leaves it dead (304, read again)', async () => {
      const id = fake.addCallback({ EventType: 'bounce', Url: 'https://a.example/bounce', Status: 'dead', Version: 2 });
      const client = clientWith();

      const unchanged = await client.update<EventCallbackUrl>('eventcallbackurl', id, { Status: 'alive' });
      expect(unchanged).toMatchObject({ ID: id, Status: 'dead' });
      expect(fake.requests.map(({ method, status }) => [method, status])).toEqual([
        ['PUT', 304],
        ['GET', 200],
      ]);

      const rearmed = { Url: 'https://a.example/bounce?rearm=1', Status: 'alive' };
      const revived = await client.update<EventCallbackUrl>('eventcallbackurl', id, rearmed);
      expect(revived).toEqual({
        ID: id,
        APIKeyID: '1234567',
        EventType: 'bounce',
        Url: 'https://a.example/bounce?rearm=1',
        Status: 'alive',
        IsBackup: false,
        Version: 2,
      });
    });

    it('deletes a row, counts an absent one as deleted, and reads null for it', async () => {
      const id = fake.addCallback({ EventType: 'spam', Url: 'https://a.example/spam' });
      const client = clientWith();
      await client.delete('eventcallbackurl', id);
      await client.delete('eventcallbackurl', id);
      expect(await client.get('eventcallbackurl', id)).toBeNull();
      expect(fake.requests.map(({ method, status }) => [method, status])).toEqual([
        ['DELETE', 204],
        ['DELETE', 404],
        ['GET', 404],
      ]);
    });
  });

  describe('the fake', () => {
    it('takes FromTS as exclusive and ToTS as inclusive unless told otherwise', async () => {
      fake.addMessages(messages(9)); // three per second: DAY_START, +1, +2
      const client = clientWith();
      const count = () => client.listAll('message', { FromTS: DAY_START, ToTS: DAY_START + 1 }).then((rows) => rows.length);
      expect(await count()).toBe(3);
      fake.fromTsInclusive = true;
      expect(await count()).toBe(6);
      fake.toTsInclusive = false;
      expect(await count()).toBe(3);
    });

    it('refuses a query parameter the resource does not know, so that a typo fails', async () => {
      await expect(clientWith().listAll('message', { FromTs: DAY_START })).rejects.toMatchObject({ status: 400 });
    });

    it('reads clickstatistics of the current day only when no time filter is given', async () => {
      const now = Date.now();
      fake.addMessages([
        {
          ID: FIRST_MESSAGE_ID,
          ArrivedAt: new Date(now - 3 * 86_400_000),
          clicks: [{ ClickedAt: new Date(now - 2 * 86_400_000), Url: 'https://old.example' }],
        },
        { ID: FIRST_MESSAGE_ID + 1n, ArrivedAt: new Date(now), clicks: [{ ClickedAt: new Date(now), Url: 'https://new.example' }] },
      ]);
      const clicks = await clientWith().listAll<ClickStatisticsRow>('clickstatistics');
      expect(clicks.map((click) => click.Url)).toEqual(['https://new.example']);
    });

    it('ends a delayed answer the client gave up on without failing', async () => {
      fake.latencyMs = 300;
      await expect(clientWith({ requestTimeoutMs: 50, maxRetries: 0 }).listAll('eventcallbackurl')).rejects.toThrow(/within 50 ms/);
      await waitFor('the fake to have answered the abandoned request', () => fake.requests[0]?.status === 200);
    });
  });
});
