import { boundedText, MAX_REASON_LENGTH } from './bounded-text';

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
