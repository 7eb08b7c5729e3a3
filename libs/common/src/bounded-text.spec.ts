import { boundedText, maskedLine, MAX_REASON_LENGTH } from './bounded-text';

describe('boundedText', () => {
  it('keeps a short text as it is', () => {
    expect(boundedText('Segment answered 500')).toBe('Segment answered 500');
  });

  it('cuts a long text to the limit and says how long it was', () => {
    const cut = boundedText('x'.repeat(5_000_000));
    expect(cut.length).toBe(MAX_REASON_LENGTH);
    expect(cut).toMatch(/\.\.\. \(5000000 characters\)$/);
  });
});

describe('maskedLine', () => {
  it('masks every secret before cutting, so that no prefix of one survives the cut', () => {
    const line = maskedLine(`${'x'.repeat(8)} key-123 said\n\tno to secret-456789`, ['secret-456789', 'key-123'], 24);
    expect(line).toBe('xxxxxxxx *** said no to ...');
    expect(maskedLine('a secret-456789', ['secret-456789'], 5)).toBe('a ***');
  });

  it('masks the longer of two nested secrets whole, and ignores an empty one', () => {
    expect(maskedLine('abc abcdef', ['abc', 'abcdef', ''], 100)).toBe('*** ***');
  });
});
