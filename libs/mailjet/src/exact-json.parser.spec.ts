import { jsonNestingDepth, parseJsonExact } from './exact-json.parser';

describe('parseJsonExact', () => {
  it('keeps integers beyond 2^53 digit for digit, wherever they sit', () => {
    const parsed = parseJsonExact(
      '{"Count":2,"Total":2,"Data":[{"ID":1152921504606846976,"ContactID":-1152921504606846977},' +
        '{"nested":{"ids":[18446744073709551615, 9007199254740993]}}]}',
    );
    expect(parsed).toEqual({
      Count: 2,
      Total: 2,
      Data: [
        { ID: '1152921504606846976', ContactID: '-1152921504606846977' },
        { nested: { ids: ['18446744073709551615', '9007199254740993'] } },
      ],
    });
    expect(String(JSON.parse('1152921504606846977'))).not.toBe('1152921504606846977'); // what it avoids
  });

  it('draws the line at 2^53: the largest safe integer stays a number, the next one becomes digits', () => {
    expect(parseJsonExact('[9007199254740991, -9007199254740991, 9007199254740992, -9007199254740992]')).toEqual([
      9007199254740991,
      -9007199254740991,
      '9007199254740992',
      '-9007199254740992',
    ]);
    // 16 digits but safe: a number, as JSON.parse gives it
    expect(parseJsonExact('{"ID": 1000000000000000}')).toEqual({ ID: 1000000000000000 });
  });

  it('leaves decimals, exponents, digits in strings and a top-level scalar alone', () => {
    expect(parseJsonExact('{"r": 12345678901234567.5, "e": 1e300, "s": "12345678901234567890 \\" 9007199254740993"}')).toEqual({
      r: 12345678901234567.5,
      e: 1e300,
      s: '12345678901234567890 " 9007199254740993',
    });
    expect(parseJsonExact('1152921504606846976')).toBe('1152921504606846976');
    expect(parseJsonExact('42')).toBe(42);
  });

  it.each([
    ['not JSON', 'hello'],
    ['truncated JSON', '{"Data":['],
    ['a big integer used as a key', '{12345678901234567: 1}'],
    ['a leading-zero integer', '{"ID": 01152921504606846976}'],
    ['an empty text', ''],
  ])('throws a SyntaxError on %s', (_, text) => {
    expect(() => parseJsonExact(text)).toThrow(SyntaxError);
  });
});

describe('jsonNestingDepth', () => {
  it('counts objects and arrays, not brackets inside strings', () => {
    expect(jsonNestingDepth('1')).toBe(0);
    expect(jsonNestingDepth('{"a":[{"b":"[[[{{{"}]}')).toBe(3);
  });
});
