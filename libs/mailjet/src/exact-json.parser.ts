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

// 2^53 has 16 digits: an integer with fewer is always safe, one with more never is.
const MAX_ALWAYS_SAFE_DIGITS = 15;
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

// A quoted number before ':' would turn an invalid key into a valid one.
function followedByColon(text: string, from: number): boolean {
  let i = from;
  while (i < text.length && isWhitespace(text.charCodeAt(i))) i++;
  return text.charCodeAt(i) === COLON;
}

/** An integer literal that a double cannot hold exactly (beyond ±(2^53 - 1)). */
function isUnsafeInteger(literal: string): boolean {
  const digits = literal.startsWith('-') ? literal.length - 1 : literal.length;
  if (digits <= MAX_ALWAYS_SAFE_DIGITS || !JSON_INTEGER.test(literal)) return false;
  // Rounding never takes a value at or beyond 2^53 below it, so this is exact.
  return !Number.isSafeInteger(Number(literal));
}

export interface JsonScan {
  /** Spans of the integer literals too large for a double. */
  unsafeIntegers: Array<[number, number]>;
  /** Spans of the elements of a top-level array (none when the top level is not an array). */
  elements: Array<[number, number]>;
  /** How deep each element of a top-level array nests, counted from the element. */
  elementDepths: number[];
  /** How deeply the whole text nests objects and arrays (0 for a scalar). */
  maxDepth: number;
}

/**
 * One pass over a JSON text, outside strings: marks the integers too large for a double so that
 * they can be parsed as strings, and the span of every element of a top-level array so that
 * each one's raw text can be kept exactly as received. Does not validate: JSON.parse does.
 */
export function scanJson(text: string): JsonScan {
  const unsafeIntegers: Array<[number, number]> = [];
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
      if (isUnsafeInteger(text.slice(i, end)) && !followedByColon(text, end)) unsafeIntegers.push([i, end]);
      i = end - 1;
    }
  }
  return { unsafeIntegers, elements, elementDepths, maxDepth };
}

/** How deeply a JSON text nests objects and arrays (0 for a scalar); strings are skipped, not parsed. */
export function jsonNestingDepth(text: string): number {
  return scanJson(text).maxDepth;
}

/** `text` with the given integer literals wrapped in quotes, so that JSON.parse keeps their digits. */
export function quoteIntegers(text: string, spans: Array<[number, number]>): string {
  if (spans.length === 0) return text;
  let result = '';
  let from = 0;
  for (const [start, end] of spans) {
    result += `${text.slice(from, start)}"${text.slice(start, end)}"`;
    from = end;
  }
  return result + text.slice(from);
}

/**
 * JSON.parse, except that every integer a double cannot hold exactly comes back as its decimal
 * digits in a string: Mailjet's ids (`MessageID` 1152921504606846976 and the like) exceed 2^53,
 * and JSON.parse would round them. Safe integers stay numbers. Throws JSON.parse's SyntaxError.
 */
export function parseJsonExact(text: string): unknown {
  return JSON.parse(quoteIntegers(text, scanJson(text).unsafeIntegers));
}
