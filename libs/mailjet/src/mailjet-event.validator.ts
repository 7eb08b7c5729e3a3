import { createHash } from 'node:crypto';
import { jsonNestingDepth } from './exact-json.parser';
import { MAX_NESTING_DEPTH } from './mailjet-body.parser';
import {
  isMailjetEventType,
  MailjetEventPayload,
  MailjetEventRecord,
  MailjetEventType,
  ReceivedMailjetEvent,
} from './mailjet-event.types';

// Events outside this window are junk; it also keeps `time` within what timestamptz can hold.
const EARLIEST_TIME = Date.UTC(2000, 0, 1) / 1000;
const LATEST_TIME = Date.UTC(2100, 0, 1) / 1000;
const MAX_FIELD_BYTES = 1000;
// The longest address SMTP can carry (RFC 5321): a longer one is not cut short and forwarded.
const MAX_EMAIL_LENGTH = 254;
// How much of an unknown value a reason quotes.
const QUOTED_LENGTH = 64;
const MESSAGE_ID = /^\d{1,20}$/;

/** `text` cut to at most `maxBytes` bytes of UTF-8, never in the middle of a character. */
function cutToBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const cut = Buffer.from(text.slice(0, maxBytes)).subarray(0, maxBytes).toString('utf8');
  // A character cut in two decodes as U+FFFD: drop it.
  return cut.endsWith('\uFFFD') ? cut.slice(0, -1) : cut;
}

/**
 * Text that PostgreSQL can store and index: no NUL characters, and bounded in bytes (an index
 * entry holds at most 2,704 bytes, and 1,000 characters of CJK text are 3,000).
 */
function storableText(value: unknown): string | null {
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const text = cutToBytes(String(value).replaceAll('\u0000', ''), MAX_FIELD_BYTES);
  return text === '' ? null : text;
}

/** A value a caller sent, described in a few words for a reason: never the whole of it. */
function describedValue(value: unknown): string {
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value.slice(0, QUOTED_LENGTH));
    return value.length > QUOTED_LENGTH ? `${quoted}... (${value.length} characters)` : quoted;
  }
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? 'an array' : `a value of type ${typeof value}`;
}

/** Mailjet sends ids as JSON numbers or strings; the parser already kept big ones as digit strings. */
export function messageIdOf(payload: MailjetEventPayload): string | null {
  const { MessageID: id } = payload;
  if (typeof id === 'number' && Number.isSafeInteger(id) && id > 0) return String(id);
  if (typeof id === 'string' && MESSAGE_ID.test(id) && !/^0+$/.test(id)) return id.replace(/^0+/, '');
  return null;
}

function unixTimeOf(value: unknown): number | null {
  const time = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof time === 'number' && Number.isInteger(time) ? time : null;
}

/**
 * The same real event gives the same key however often it is posted: message, type and second,
 * plus the link for clicks (scanners click every link of a message within one second). The link
 * is hashed so that the key stays short enough for an index and for Segment's messageId.
 */
export function dedupeKeyOf(
  event: { type: MailjetEventType; time: number; messageId: string | null; messageGuid: string | null; url?: unknown },
): string {
  const message = event.messageId ?? `guid-${event.messageGuid}`;
  const key = `${message}:${event.type}:${event.time}`;
  if (event.type !== 'click') return key;
  return `${key}:${linkHashOf(event.url)}`;
}

/** The link of a click as its dedupe key ends with it: 16 hex digits of its SHA-256. */
export function linkHashOf(url: unknown): string {
  return createHash('sha256')
    .update(typeof url === 'string' ? url : '')
    .digest('hex')
    .slice(0, 16);
}

function invalidReasonOf(
  nestingDepth: number,
  payload: MailjetEventPayload,
  time: number | null,
  email: string | null,
  messageId: string | null,
  messageGuid: string | null,
): string | null {
  if (nestingDepth > MAX_NESTING_DEPTH) return `the event nests deeper than ${MAX_NESTING_DEPTH} levels; no Mailjet event does`;
  if (!isMailjetEventType(payload.event)) {
    return payload.event === undefined ? 'missing "event"' : `unknown event type ${describedValue(payload.event)}`;
  }
  if (time === null) return payload.time === undefined ? 'missing "time"' : '"time" is not a Unix timestamp in seconds';
  if (time < EARLIEST_TIME || time >= LATEST_TIME) return `"time" ${time} is outside 2000-2099`;
  if (email === null || typeof payload.email !== 'string') return 'missing or empty "email"';
  if (payload.email.includes('\u0000')) return '"email" contains a NUL character';
  if (payload.email.length > MAX_EMAIL_LENGTH) {
    return `"email" is ${payload.email.length} characters long, over the ${MAX_EMAIL_LENGTH} an address can have`;
  }
  if (messageId === null && messageGuid === null) return 'no "MessageID" (missing or 0) and no "Message_GUID"';
  if (messageGuid !== null && messageGuid.length > 64) return '"Message_GUID" is longer than 64 characters';
  if (typeof payload.Payload === 'string' && jsonNestingDepth(payload.Payload) > MAX_NESTING_DEPTH) {
    return `"Payload" nests deeper than ${MAX_NESTING_DEPTH} levels`;
  }
  return null;
}

/** Extracts the key fields of an event and decides whether it can be forwarded. Pure. */
export function toEventRecord({ rawJson, payload, nestingDepth }: ReceivedMailjetEvent): MailjetEventRecord {
  const time = unixTimeOf(payload.time);
  const email = storableText(payload.email);
  const messageId = messageIdOf(payload);
  const messageGuid = storableText(payload.Message_GUID);
  const invalidReason = invalidReasonOf(nestingDepth, payload, time, email, messageId, messageGuid);
  const usable = invalidReason === null;
  return {
    rawJson,
    eventType: storableText(payload.event)?.slice(0, 64) ?? '',
    time: time !== null && time >= EARLIEST_TIME && time < LATEST_TIME ? time : null,
    email,
    messageId,
    messageGuid,
    dedupeKey: usable
      ? dedupeKeyOf({ type: payload.event as MailjetEventType, time: time!, messageId, messageGuid, url: payload.url })
      : null,
    invalidReason,
  };
}
