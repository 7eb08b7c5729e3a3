import { decodeEventIds, encodeEventIds } from './event-id-ranges';

describe('event id ranges', () => {
  it('writes consecutive ids as ranges and reads them back in order', () => {
    const ids = [9999999998n, 10000000000n, 9999999999n, 10000000001n, 10000000005n, 9223372036854775807n];
    const text = encodeEventIds(ids);
    expect(text).toBe('9999999998-10000000001,10000000005,9223372036854775807');
    expect(decodeEventIds(text, 100)).toEqual([...ids].sort((a, b) => (a < b ? -1 : 1)));
  });

  it('keeps 500 consecutive ids in a few bytes', () => {
    const ids = Array.from({ length: 500 }, (_, i) => 10000000000n + BigInt(i));
    expect(encodeEventIds(ids)).toBe('10000000000-10000000499');
  });

  it.each([[''], ['1,,2'], ['0'], ['5-3'], ['1-2-3'], ['12a'], ['1-100000000']])('refuses %p', (text) => {
    expect(() => decodeEventIds(text, 10_000)).toThrow();
  });
});
