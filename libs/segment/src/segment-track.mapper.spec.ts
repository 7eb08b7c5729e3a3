import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MailjetEventType, parseMailjetBody, toEventRecord } from '@app/mailjet';
import { MAILJET_SAMPLES } from '../../../test/fixtures/mailjet-samples';
import { IdentityOptions, segmentMessageIdOf, toSegmentTrackCall } from './segment-track.mapper';
import { BRIDGE_VERSION, SegmentTrackCall } from './segment-track.types';

const noIdentity: IdentityOptions = { userIdPayloadKey: 'userId', storedUserId: null };

function callFor(json: string, identity = noIdentity): SegmentTrackCall {
  const [received] = parseMailjetBody(json);
  const record = toEventRecord(received);
  expect(record.invalidReason).toBeNull();
  return toSegmentTrackCall(
    {
      type: record.eventType as MailjetEventType,
      payload: received.payload,
      email: record.email!,
      messageId: record.messageId,
      time: record.time!,
      dedupeKey: record.dedupeKey!,
    },
    identity,
  );
}

const integration = { name: 'mailjet', version: BRIDGE_VERSION };
const guid = '1ab23cd4-e567-8901-2345-6789f0gh1i2j';

describe('toSegmentTrackCall on Mailjet\'s documented examples', () => {
  it('sent -> Email Delivered', () => {
    expect(callFor(MAILJET_SAMPLES.sent)).toEqual({
      event: 'Email Delivered',
      anonymousId: 'api@mailjet.com',
      messageId: segmentMessageIdOf('19421777835146490:sent:1433333949'),
      timestamp: '2015-06-03T12:19:09.000Z',
      properties: {
        email_id: '19421777835146490',
        message_guid: guid,
        campaign_id: '7257',
        contact_id: '4',
        custom_id: 'helloworld',
        smtp_reply: 'sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)',
      },
      context: { integration, traits: { email: 'api@mailjet.com' } },
    });
  });

  it('open -> Email Opened, with ip, user agent and country', () => {
    expect(callFor(MAILJET_SAMPLES.open)).toEqual({
      event: 'Email Opened',
      anonymousId: 'api@mailjet.com',
      messageId: segmentMessageIdOf('19421777396190490:open:1433103519'),
      timestamp: '2015-05-31T20:18:39.000Z',
      properties: {
        email_id: '19421777396190490',
        message_guid: guid,
        campaign_id: '7173',
        contact_id: '320',
        custom_id: 'helloworld',
      },
      context: {
        integration,
        traits: { email: 'api@mailjet.com' },
        ip: '127.0.0.1',
        userAgent: 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0',
        location: { country: 'US' },
      },
    });
  });

  it('click -> Email Link Clicked, with the link', () => {
    const call = callFor(MAILJET_SAMPLES.click);
    expect(call).toEqual({
      event: 'Email Link Clicked',
      anonymousId: 'api@mailjet.com',
      messageId: call.messageId,
      timestamp: '2015-06-03T12:30:53.000Z',
      properties: {
        email_id: '19421777836302490',
        message_guid: guid,
        campaign_id: '7272',
        contact_id: '4',
        custom_id: 'helloworld',
        link_url: 'https://mailjet.com',
      },
      context: {
        integration,
        traits: { email: 'api@mailjet.com' },
        ip: '127.0.0.1',
        userAgent:
          'Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/43.0.2357.81 Safari/537.36',
        location: { country: 'FR' },
      },
    });
    expect(call.messageId).toMatch(/^mailjet-[0-9a-f]{64}$/);
  });

  it('bounce -> Email Bounced, with the bounce details', () => {
    expect(callFor(MAILJET_SAMPLES.bounce)).toEqual({
      event: 'Email Bounced',
      anonymousId: 'bounce@mailjet.com',
      messageId: segmentMessageIdOf('13792286917004336:bounce:1430812195'),
      timestamp: '2015-05-05T07:49:55.000Z',
      properties: {
        email_id: '13792286917004336',
        message_guid: guid,
        campaign_id: '0',
        contact_id: '0',
        custom_id: 'helloworld',
        hard_bounce: true,
        blocked: false,
        error_related_to: 'recipient',
        error: 'user unknown',
        comment: 'Host or domain name not found. Name service error for name=lbjsnrftlsiuvbsren.com type=A: Host not found',
      },
      context: { integration, traits: { email: 'bounce@mailjet.com' } },
    });
  });

  it('blocked -> Email Blocked, with the error', () => {
    expect(callFor(MAILJET_SAMPLES.blocked)).toEqual({
      event: 'Email Blocked',
      anonymousId: 'bounce@mailjet.com',
      messageId: segmentMessageIdOf('13792286917004336:blocked:1430812195'),
      timestamp: '2015-05-05T07:49:55.000Z',
      properties: {
        email_id: '13792286917004336',
        message_guid: guid,
        campaign_id: '0',
        contact_id: '0',
        custom_id: 'helloworld',
        error_related_to: 'recipient',
        error: 'user unknown',
      },
      context: { integration, traits: { email: 'bounce@mailjet.com' } },
    });
  });

  it('spam -> Email Marked as Spam, with the source', () => {
    expect(callFor(MAILJET_SAMPLES.spam)).toEqual({
      event: 'Email Marked as Spam',
      anonymousId: 'bounce@mailjet.com',
      messageId: segmentMessageIdOf('13792286917004336:spam:1430812195'),
      timestamp: '2015-05-05T07:49:55.000Z',
      properties: {
        email_id: '13792286917004336',
        message_guid: guid,
        campaign_id: '1234567890',
        contact_id: '987654321',
        custom_id: 'helloworld',
        source: 'JMRPP',
      },
      context: { integration, traits: { email: 'bounce@mailjet.com' } },
    });
  });

  it('unsub -> Email Unsubscribed, with the list and client context', () => {
    expect(callFor(MAILJET_SAMPLES.unsub)).toEqual({
      event: 'Email Unsubscribed',
      anonymousId: 'api@mailjet.com',
      messageId: segmentMessageIdOf('20547674933128000:unsub:1433334941'),
      timestamp: '2015-06-03T12:35:41.000Z',
      properties: {
        email_id: '20547674933128000',
        message_guid: guid,
        campaign_id: '7276',
        contact_id: '126',
        custom_id: 'helloworld',
        list_id: '1',
      },
      context: {
        integration,
        traits: { email: 'api@mailjet.com' },
        ip: '127.0.0.1',
        userAgent:
          'Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/43.0.2357.81 Safari/537.36',
        location: { country: 'FR' },
      },
    });
  });
});

describe('identity', () => {
  const withPayload = (payload: string) =>
    MAILJET_SAMPLES.open.replace('"Payload": ""', `"Payload": ${JSON.stringify(payload)}`);

  it('takes the userId from the Payload first, as a string, and keeps the parsed payload', () => {
    const call = callFor(withPayload('{"userId": 42, "plan": "pro"}'), { userIdPayloadKey: 'userId', storedUserId: 'stored' });
    expect(call.userId).toBe('42');
    expect(call.anonymousId).toBeUndefined();
    expect(call.properties.payload).toEqual({ userId: 42, plan: 'pro' });
    expect(call.context.traits.email).toBe('api@mailjet.com');
  });

  it('honours USER_ID_PAYLOAD_KEY', () => {
    const call = callFor(withPayload('{"userId": "a", "uid": "b"}'), { userIdPayloadKey: 'uid', storedUserId: null });
    expect(call.userId).toBe('b');
  });

  it('falls back to the stored identity when the Payload has no userId', () => {
    const call = callFor(withPayload('{"plan": "pro"}'), { userIdPayloadKey: 'userId', storedUserId: 'user-7' });
    expect(call.userId).toBe('user-7');
  });

  it('falls back to anonymousId = email, and keeps a Payload that is not JSON as text', () => {
    const call = callFor(withPayload('campaign-7'));
    expect(call.anonymousId).toBe('api@mailjet.com');
    expect(call.userId).toBeUndefined();
    expect(call.properties.payload).toBe('campaign-7');
  });
});

describe('messageId and robustness', () => {
  it('is deterministic and under 100 characters, and differs per dedupe key', () => {
    expect(callFor(MAILJET_SAMPLES.click).messageId).toBe(callFor(MAILJET_SAMPLES.click).messageId);
    expect(callFor(MAILJET_SAMPLES.click).messageId).not.toBe(callFor(MAILJET_SAMPLES.open).messageId);
    expect(segmentMessageIdOf(`guid-${'x'.repeat(64)}:click:1433334653:0123456789abcdef`).length).toBeLessThan(100);
  });

  it('keeps a MessageID beyond 2^53 exact in email_id', () => {
    const json = MAILJET_SAMPLES.open.replace(/"MessageID": \d+/, '"MessageID": 1152921505370435042');
    expect(callFor(json).properties.email_id).toBe('1152921505370435042');
  });

  it('ignores fields Mailjet may add later', () => {
    const json = MAILJET_SAMPLES.open.replace('"event": "open",', '"event": "open", "new_field": {"a": [1]},');
    expect(callFor(json)).toEqual(callFor(MAILJET_SAMPLES.open));
  });

  it('sends the version of package.json', () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '../../../package.json'), 'utf8'));
    expect(BRIDGE_VERSION).toBe(pkg.version);
  });
});
