import { GROUPED_SENT_SAMPLE, MAILJET_SAMPLES } from '../../../test/fixtures/mailjet-samples';
import { MailjetBodyError, parseMailjetBody } from './mailjet-body.parser';

describe('parseMailjetBody', () => {
  it('keeps MessageIDs beyond 2^53 digit for digit', () => {
    const [event] = parseMailjetBody('{"event":"sent","MessageID":19421777835146491,"time":1}');
    expect(event.payload.MessageID).toBe('19421777835146491');
    expect(String(JSON.parse('19421777835146491'))).not.toBe('19421777835146491'); // what the parser avoids
  });

  it('keeps 1152921505370435042 exact, in an array and in nested objects', () => {
    const [first, second] = parseMailjetBody(
      '[{"MessageID": 1152921505370435042, "mj_message_id": "1152921505370435042"},' +
        ' {"MessageID":-1152921505370435042,"nested":{"id":18446744073709551615}}]',
    );
    expect(first.payload.MessageID).toBe('1152921505370435042');
    expect(first.payload.mj_message_id).toBe('1152921505370435042');
    expect(second.payload.MessageID).toBe('-1152921505370435042');
    expect((second.payload.nested as { id: string }).id).toBe('18446744073709551615');
  });

  it('leaves small integers, decimals and digits inside strings alone', () => {
    const [event] = parseMailjetBody(
      '{"MessageID": 42, "time": 1433333949, "ratio": 1.5e300, "text": "12345678901234567890 \\" 19421777835146491"}',
    );
    expect(event.payload).toEqual({
      MessageID: 42,
      time: 1433333949,
      ratio: 1.5e300,
      text: '12345678901234567890 " 19421777835146491',
    });
  });

  it('accepts one object and returns its text as received', () => {
    const events = parseMailjetBody(MAILJET_SAMPLES.open);
    expect(events).toHaveLength(1);
    expect(events[0].rawJson).toBe(MAILJET_SAMPLES.open);
    expect(events[0].payload.event).toBe('open');
  });

  it('accepts an array of objects and keeps the exact text of each element', () => {
    const events = parseMailjetBody(GROUPED_SENT_SAMPLE);
    expect(events.map((e) => e.payload.MessageID)).toEqual(['19421777835146490', '19421777835146491']);
    expect(events[0].rawJson).toBe(MAILJET_SAMPLES.sent);
    expect(events[1].rawJson).toContain('"MessageID": 19421777835146491');
    expect(JSON.parse(events[1].rawJson).email).toBe('api@mailjet.com');
  });

  it('keeps the element text exact when strings hold brackets, braces and escaped quotes', () => {
    const body = '[ {"a":"]}\\"{[","b":[1,{"c":2}]} ,{"d":"\\\\"} ]';
    const events = parseMailjetBody(body);
    expect(events.map((e) => e.rawJson)).toEqual(['{"a":"]}\\"{[","b":[1,{"c":2}]}', '{"d":"\\\\"}']);
  });

  it.each([
    ['not JSON', 'hello'],
    ['truncated JSON', '{"event":"sent",'],
    ['a string', '"sent"'],
    ['a number', '19421777835146491'],
    ['null', 'null'],
    ['an empty body', ''],
    ['an empty array', '[]'],
    ['an array with a non-object', '[{"event":"sent"}, 1]'],
    ['an array of arrays', '[[{"event":"sent"}]]'],
    ['a big integer used as a key', '{12345678901234567: 1}'],
    ['a leading-zero integer', '{"MessageID": 0019421777835146491}'],
    ['an object nested deeper than any callback', `${'{"a":'.repeat(300)}1${'}'.repeat(300)}`],
    ['an array nested too deep', `[${'['.repeat(40)}${']'.repeat(40)}]`],
  ])('rejects %s', (_, body) => {
    expect(() => parseMailjetBody(body)).toThrow(MailjetBodyError);
  });

  it('says how deep each event nests, so that one junk event of a group is stored as invalid, not the body refused', () => {
    const deep = `{"event":"open","x":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}`;
    const events = parseMailjetBody(`[{"event":"sent"}, ${deep}]`);
    expect(events.map((event) => event.nestingDepth)).toEqual([1, 41]);
    expect(events[1].rawJson).toBe(deep);
    expect(parseMailjetBody(deep)[0].nestingDepth).toBe(41);
  });
});
