/** Longest reason stored in `last_error` or shown by the admin API. */
export const MAX_REASON_LENGTH = 500;

/**
 * `text` cut to `max` characters, saying how long it was: a caller controls much of what ends up
 * in a reason (an event type, a Segment answer), and a reason is stored and echoed.
 */
export function boundedText(text: string, max = MAX_REASON_LENGTH): string {
  if (text.length <= max) return text;
  const note = `... (${text.length} characters)`;
  return `${text.slice(0, Math.max(max - note.length, 0))}${note}`;
}

/**
 * What another service said, as one line of at most `max` characters with every secret masked:
 * masked before the cut, so that no prefix of a secret survives it, and longest first, so that a
 * secret inside another is not left half shown. Empty secrets are skipped.
 */
export function maskedLine(text: string, secrets: readonly string[], max: number): string {
  let line = text;
  for (const secret of [...secrets].filter((s) => s !== '').sort((a, b) => b.length - a.length)) {
    line = line.split(secret).join('***');
  }
  line = line.replace(/[\s\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}...` : line;
}
