import { quoteIntegers, scanJson } from './exact-json.parser';
import { MailjetEventPayload, ReceivedMailjetEvent } from './mailjet-event.types';

/** A callback body that is not JSON, or not an object or a non-empty array of objects. */
export class MailjetBodyError extends Error {}

// No Mailjet event nests deeper than a few levels: an event that does is stored as junk (invalid).
export const MAX_NESTING_DEPTH = 32;
// A body nesting deeper than this anywhere is refused whole (400): it is no callback, and
// PostgreSQL's JSON parser, like any recursive one, gives up somewhere deeper.
export const MAX_BODY_NESTING_DEPTH = 256;

function isPlainObject(value: unknown): value is MailjetEventPayload {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses a Mailjet callback body: one event object, or an array of them (grouped callbacks).
 * Integers beyond 2^53 come back as their exact digits in a string (`JSON.parse` would round
 * `19421777835146491`); every event keeps the exact text it was sent as.
 */
export function parseMailjetBody(text: string): ReceivedMailjetEvent[] {
  const { unsafeIntegers, elements, elementDepths, maxDepth } = scanJson(text);
  if (maxDepth > MAX_BODY_NESTING_DEPTH) {
    throw new MailjetBodyError(`body nests deeper than ${MAX_BODY_NESTING_DEPTH} levels; no Mailjet callback does`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(quoteIntegers(text, unsafeIntegers));
  } catch (error) {
    throw new MailjetBodyError(`body is not valid JSON: ${(error as Error).message}`);
  }
  if (isPlainObject(parsed)) return [{ rawJson: text.trim(), payload: parsed, nestingDepth: maxDepth }];
  if (!Array.isArray(parsed)) {
    throw new MailjetBodyError('body must be a Mailjet event object or an array of them');
  }
  if (parsed.length === 0) throw new MailjetBodyError('body is an empty array: it holds no event');
  const nonObject = parsed.findIndex((element) => !isPlainObject(element));
  if (nonObject !== -1) throw new MailjetBodyError(`element ${nonObject} of the array is not an object`);
  return parsed.map((payload: MailjetEventPayload, index) => ({
    rawJson: text.slice(elements[index][0], elements[index][1]),
    payload,
    nestingDepth: elementDepths[index],
  }));
}
