import { MAILJET_SAMPLES, SAMPLE_MESSAGE_IDS } from '../../../test/fixtures/mailjet-samples';
import { parseMailjetBody } from './mailjet-body.parser';
import { MAILJET_EVENT_TYPES } from './mailjet-event.types';
import { toEventRecord } from './mailjet-event.validator';

const recordOf = (json: string) => toEventRecord(parseMailjetBody(json)[0]);
const valid = { event: 'open', time: 1433103519, MessageID: 19421777, email: 'a@example.com' };
const recordOfObject = (object: Record<string, unknown>) => recordOf(JSON.stringify(object));

describe('toEventRecord', () => {
  it.each(MAILJET_EVENT_TYPES)('extracts the key fields of the documented %s example', (type) => {
    const record = recordOf(MAILJET_SAMPLES[type]);
    expect(record).toMatchObject({
      eventType: type,
      messageId: SAMPLE_MESSAGE_IDS[type],
      messageGuid: '1ab23cd4-e567-8901-2345-6789f0gh1i2j',
      invalidReason: null,
    });
    expect(record.time).toBe(JSON.parse(MAILJET_SAMPLES[type]).time);
    expect(record.dedupeKey).toMatch(new RegExp(`^${SAMPLE_MESSAGE_IDS[type]}:${type}:\\d+`));
  });

  it('accepts MessageID as a number and as a string, with the same key', () => {
    const asNumber = recordOf('{"event":"open","time":1433103519,"MessageID":1152921505370435042,"email":"a@b.c"}');
    const asString = recordOf('{"event":"open","time":1433103519,"MessageID":"1152921505370435042","email":"a@b.c"}');
    const small = recordOfObject({ ...valid, MessageID: '19421777' });
    expect(asNumber.messageId).toBe('1152921505370435042');
    expect(asString.messageId).toBe('1152921505370435042');
    expect(asNumber.dedupeKey).toBe(asString.dedupeKey);
    expect(small.messageId).toBe('19421777');
    expect(recordOfObject(valid).dedupeKey).toBe(small.dedupeKey);
  });

  it('accepts an event with MessageID 0 when it has a Message_GUID', () => {
    const record = recordOfObject({ ...valid, MessageID: 0, Message_GUID: 'abc-123' });
    expect(record.invalidReason).toBeNull();
    expect(record.dedupeKey).toBe('guid-abc-123:open:1433103519');
  });

  it.each([
    ['an empty email', { ...valid, email: '' }, 'missing or empty "email"'],
    ['no email', { ...valid, email: undefined }, 'missing or empty "email"'],
    ['a numeric email', { ...valid, email: 42 }, 'missing or empty "email"'],
    ['MessageID 0 and no GUID', { ...valid, MessageID: 0 }, 'no "MessageID" (missing or 0) and no "Message_GUID"'],
    ['MessageID 0 and an empty GUID', { ...valid, MessageID: 0, Message_GUID: '' }, 'no "MessageID"'],
    ['an unknown event', { ...valid, event: 'delivered' }, 'unknown event type "delivered"'],
    ['no event', { ...valid, event: undefined }, 'missing "event"'],
    ['no time', { ...valid, time: undefined }, 'missing "time"'],
    ['a time in milliseconds', { ...valid, time: 1433103519000 }, 'outside 2000-2099'],
    ['a time that is not a number', { ...valid, time: 'yesterday' }, 'not a Unix timestamp'],
    ['an email with a NUL', { ...valid, email: 'a\u0000@b.c' }, 'NUL'],
    ['an email longer than an address can be', { ...valid, email: `${'a'.repeat(250)}@b.cd` }, '"email" is 255 characters long'],
    ['a Payload nesting 5,000 levels deep', { ...valid, Payload: `${'['.repeat(5000)}${']'.repeat(5000)}` }, '"Payload" nests deeper than 32 levels'],
  ])('marks an event with %s invalid, with a reason', (_, payload, reason) => {
    const record = recordOfObject(payload);
    expect(record.invalidReason).toContain(reason);
    expect(record.dedupeKey).toBeNull();
  });

  it('gives different keys to an open and a click in the same second, and to clicks on two links', () => {
    const open = recordOfObject(valid);
    const click = recordOfObject({ ...valid, event: 'click', url: 'https://a.example' });
    const otherClick = recordOfObject({ ...valid, event: 'click', url: 'https://b.example' });
    expect(new Set([open.dedupeKey, click.dedupeKey, otherClick.dedupeKey]).size).toBe(3);
  });

  it('gives the same event posted twice the same key, short enough for Segment', () => {
    const click = { ...valid, event: 'click', url: `https://a.example/${'x'.repeat(5000)}` };
    expect(recordOfObject(click).dedupeKey).toBe(recordOfObject(click).dedupeKey);
    expect(recordOfObject(click).dedupeKey!.length).toBeLessThan(80);
  });

  it('stores junk in a form PostgreSQL accepts: no NUL, bounded length', () => {
    const record = recordOfObject({ event: `x\u0000${'y'.repeat(5000)}`, email: 'z'.repeat(5000) });
    expect(record.eventType).not.toContain('\u0000');
    expect(record.eventType.length).toBeLessThanOrEqual(64);
    expect(record.email!.length).toBeLessThanOrEqual(1000);
  });

  it('quotes a few characters of an unknown event type, never the whole value', () => {
    const long = recordOfObject({ ...valid, event: 'x'.repeat(5_000_000) });
    expect(long.invalidReason).toMatch(/^unknown event type "x{64}"\.\.\. \(5000000 characters\)$/);
    const object = recordOfObject({ ...valid, event: { nested: 'y'.repeat(5_000_000) } });
    expect(object.invalidReason).toBe('unknown event type a value of type object');
    expect(recordOfObject({ ...valid, event: ['open'] }).invalidReason).toBe('unknown event type an array');
  });

  it('accepts a Payload that nests as deep as a body may', () => {
    const payload = `${'{"a":'.repeat(32)}1${'}'.repeat(32)}`;
    expect(recordOfObject({ ...valid, Payload: payload }).invalidReason).toBeNull();
  });

  it('marks an event nesting deeper than 32 levels invalid', () => {
    const record = recordOf(`{"event":"open","time":1433103519,"MessageID":1,"email":"a@b.c","x":${'['.repeat(40)}${']'.repeat(40)}}`);
    expect(record.invalidReason).toBe('the event nests deeper than 32 levels; no Mailjet event does');
  });

  it('keeps stored text within 1,000 bytes, whole characters only, so that an index can hold it', () => {
    const email = `${'中'.repeat(1200)}@b.com`;
    const record = recordOfObject({ ...valid, email });
    expect(record.invalidReason).toContain('"email" is 1206 characters long');
    expect(Buffer.byteLength(record.email!)).toBeLessThanOrEqual(1000);
    expect(record.email).toBe('中'.repeat(333));
  });
});
