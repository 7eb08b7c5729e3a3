import { TestDatabase } from './support/database';
import { MailjetFake } from './support/mailjet-fake';
import { PipelineHarness } from './support/pipeline-harness';
import { waitFor } from './support/wait-for';

const MAILJET_KEYS = { apiKey: 'mj-public-key', apiSecret: 'mj-secret-key-0123' };
const ENRICH_TIMEOUT_MS = 500;
const MAILJET_ANSWERS_AFTER_MS = 5_000;
const FIRST_MESSAGE_ID = 1152921504606846976n;

function event(type: 'open' | 'unsub', messageId: bigint, time: number, extra = ''): string {
  return `{"event":"${type}","time":${time},"MessageID":${messageId},"email":"reader@example.com"${extra}}`;
}

describe('enrichment from Mailjet: email_subject and list_name (api + worker + PostgreSQL + Redis + local Mailjet fake + local sink)', () => {
  const db = new TestDatabase();
  const mailjet = new MailjetFake(MAILJET_KEYS);
  let pipeline: PipelineHarness;

  beforeAll(async () => {
    await mailjet.start();
    pipeline = await PipelineHarness.start(db, {
      MAILJET_API_KEY: MAILJET_KEYS.apiKey,
      MAILJET_API_SECRET: MAILJET_KEYS.apiSecret,
      MAILJET_API_URL: mailjet.url,
      MAILJET_ENRICH: 'subject,list',
      MAILJET_ENRICH_TIMEOUT_MS: String(ENRICH_TIMEOUT_MS),
    });
  });
  beforeEach(async () => {
    await pipeline.reset(db);
    await db.query('delete from mailjet_lookups');
    mailjet.reset();
  });
  afterAll(async () => {
    await pipeline.close();
    await mailjet.stop();
    await db.close();
  });

  it('adds the subject to every event of a message and the list name to an unsubscribe, asking Mailjet once', async () => {
    mailjet.addMessages([{ ID: FIRST_MESSAGE_ID, ArrivedAt: new Date(1700000000 * 1000), Subject: 'Welcome aboard' }]);
    mailjet.addContactsList({ ID: 42, Name: 'Weekly news' });
    await pipeline.api.postWebhook(event('open', FIRST_MESSAGE_ID, 1700000100));
    await db.settled(1);
    await pipeline.api.postWebhook(event('unsub', FIRST_MESSAGE_ID, 1700000200, ',"mj_list_id":42'));
    await db.settled(2);
    const [open, unsub] = pipeline.sink.accepted;
    expect(open.properties).toMatchObject({ email_id: FIRST_MESSAGE_ID.toString(), email_subject: 'Welcome aboard' });
    expect(unsub.properties).toMatchObject({ email_subject: 'Welcome aboard', list_id: '42', list_name: 'Weekly news' });
    // The subject was cached: the second event did not ask again.
    expect(mailjet.requestsTo(`message/${FIRST_MESSAGE_ID}`)).toHaveLength(1);
  });

  it('never holds an event back longer than the timeout: a slow Mailjet means no property now, and the answer serves the next events', async () => {
    const messageId = FIRST_MESSAGE_ID + 1n;
    mailjet.addMessages([{ ID: messageId, ArrivedAt: new Date(1700000000 * 1000), Subject: 'Slow subject' }]);
    mailjet.delayNext(1, MAILJET_ANSWERS_AFTER_MS);
    const postedAt = Date.now();
    await pipeline.api.postWebhook(event('open', messageId, 1700000100));
    await waitFor('the event to reach the sink', () => pipeline.sink.accepted.length === 1);
    const forwardedAfter = pipeline.sink.batches[0].receivedAt - postedAt;
    expect(forwardedAfter).toBeLessThan(MAILJET_ANSWERS_AFTER_MS - 1_000);
    expect(pipeline.sink.accepted[0].properties.email_subject).toBeUndefined();

    // Mailjet's late answer is kept for the message's next events.
    await waitFor('the late answer to be cached', async () => (await db.query('select 1 from mailjet_lookups')).length === 1, { timeoutMs: 10_000 });
    await pipeline.api.postWebhook(event('open', messageId, 1700000500));
    await db.settled(2);
    expect(pipeline.sink.accepted[1].properties.email_subject).toBe('Slow subject');
  });
});
