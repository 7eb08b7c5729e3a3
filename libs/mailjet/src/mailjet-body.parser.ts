import { MailjetEventPayload, ReceivedMailjetEvent } from './mailjet-event.types';

/** A callback body that is not JSON, or not an object or a non-empty array of objects. */
export class MailjetBodyError extends Error {}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;

// No Mailjet event nests deeper than a few levels: an event that does is stored as junk (invalid).
export const MAX_NESTING_DEPTH = 32;
// A body nesting deeper than this anywhere is refused whole (400): it is no callback, and
// PostgreSQL's JSON parser, like any recursive one, gives up somewhere deeper.
export const MAX_BODY_NESTING_DEPTH = 256;

// Integers with more digits than this may not survive a double (2^53 has 16 digits).
const MAX_SAFE_DIGITS = 15;
const JSON_INTEGER = /^-?(0|[1-9]\d*)$/;

function isNumberChar(code: number): boolean {
  // digits, '+', '-', '.', 'e', 'E'
  return (code >= ZERO && code <= NINE) || code === 0x2b || code === MINUS || code === 0x2e || code === 0x65 || code === 0x45;
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** Index of the quote that closes the string opened at `start`. */
function endOfString(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  while (end !== -1) {
    let backslashes = 0;
    for (let i = end - 1; text.charCodeAt(i) === BACKSLASH; i--) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
  return text.length;
}

/**
 * One pass over the text, outside strings: marks the integers too large for a double so that
 * they can be parsed as strings, and the span of every element of a top-level array so that each
 * event's raw text is kept exactly as received.
 */
function scan(text: string): {
  bigIntegers: Array<[number, number]>;
  elements: Array<[number, number]>;
  /** How deep each element of a top-level array nests, counted from the element. */
  elementDepths: number[];
  maxDepth: number;
} {
  const bigIntegers: Array<[number, number]> = [];
  const elements: Array<[number, number]> = [];
  const elementDepths: number[] = [];
  let depth = 0;
  let topIsArray = false;
  let elementStart = -1;
  let elementDepth = 0;
  let maxDepth = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      i = endOfString(text, i);
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      if (depth === 0) topIsArray = code === OPEN_BRACKET;
      else if (depth === 1 && topIsArray) {
        elementStart = i;
        elementDepth = 0;
      }
      depth++;
      if (depth > maxDepth) maxDepth = depth;
      if (depth - 1 > elementDepth) elementDepth = depth - 1;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      depth--;
      if (depth === 1 && topIsArray) {
        elements.push([elementStart, i + 1]);
        elementDepths.push(elementDepth);
      }
    } else if (code === MINUS || (code >= ZERO && code <= NINE)) {
      let end = i + 1;
      while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
      if (end - i > MAX_SAFE_DIGITS && JSON_INTEGER.test(text.slice(i, end)) && !followedByColon(text, end)) {
        bigIntegers.push([i, end]);
      }
      i = end - 1;
    }
  }
  return { bigIntegers, elements, elementDepths, maxDepth };
}

// A quoted number before ':' would turn an invalid key into a valid one.
function followedByColon(text: string, from: number): boolean {
  let i = from;
  while (i < text.length && isWhitespace(text.charCodeAt(i))) i++;
  return text.charCodeAt(i) === COLON;
}

/** How deeply a JSON text nests objects and arrays (0 for a scalar); strings are skipped, not parsed. */
export function jsonNestingDepth(text: string): number {
  return scan(text).maxDepth;
}

function quoteBigIntegers(text: string, bigIntegers: Array<[number, number]>): string {
  if (bigIntegers.length === 0) return text;
  let result = '';
  let from = 0;
  for (const [start, end] of bigIntegers) {
    result += `${text.slice(from, start)}"${text.slice(start, end)}"`;
    from = end;
  }
  return result + text.slice(from);
}

function isPlainObject(value: unknown): value is MailjetEventPayload {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses a Mailjet callback body: one event object, or an array of them (grouped callbacks).
 * Integers beyond 2^53 come back as their exact digits in a string (`JSON.parse` would round
 * `19421777835146491`); every event keeps the exact text it was sent as.
 */
export function parseMailjetBody(text: string): ReceivedMailjetEvent[] {
  const { bigIntegers, elements, elementDepths, maxDepth } = scan(text);
  if (maxDepth > MAX_BODY_NESTING_DEPTH) {
    throw new MailjetBodyError(`body nests deeper than ${MAX_BODY_NESTING_DEPTH} levels; no Mailjet callback does`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(quoteBigIntegers(text, bigIntegers));
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
