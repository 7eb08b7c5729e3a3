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
