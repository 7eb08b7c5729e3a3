/** The seven event types Mailjet posts to an event callback URL. */
export const MAILJET_EVENT_TYPES = ['sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub'] as const;
export type MailjetEventType = (typeof MAILJET_EVENT_TYPES)[number];

export function isMailjetEventType(value: unknown): value is MailjetEventType {
  return typeof value === 'string' && (MAILJET_EVENT_TYPES as readonly string[]).includes(value);
}

/**
 * One Mailjet event object as parsed from a callback, with every integer too large for a double
 * (MessageID, mj_message_id) kept as its exact decimal digits in a string. Fields Mailjet may add
 * later are kept through the index signature.
 */
export interface MailjetEventPayload {
  event?: unknown;
  time?: unknown;
  MessageID?: unknown;
  Message_GUID?: unknown;
  email?: unknown;
  mj_campaign_id?: unknown;
  mj_contact_id?: unknown;
  customcampaign?: unknown;
  CustomID?: unknown;
  Payload?: unknown;
  url?: unknown;
  ip?: unknown;
  geo?: unknown;
  agent?: unknown;
  mj_list_id?: unknown;
  blocked?: unknown;
  hard_bounce?: unknown;
  error_related_to?: unknown;
  error?: unknown;
  comment?: unknown;
  source?: unknown;
  smtp_reply?: unknown;
  [field: string]: unknown;
}

/** One event of a callback body: the exact text Mailjet sent for it, and its parsed fields. */
export interface ReceivedMailjetEvent {
  rawJson: string;
  payload: MailjetEventPayload;
  /** How deeply the event nests objects and arrays (1 for a flat object). */
  nestingDepth: number;
}

/** The key fields extracted from an event, as stored beside its raw payload. */
export interface MailjetEventRecord {
  rawJson: string;
  eventType: string;
  /** Unix seconds. */
  time: number | null;
  email: string | null;
  messageId: string | null;
  messageGuid: string | null;
  dedupeKey: string | null;
  /** Why the event will not be forwarded; null for a usable event. */
  invalidReason: string | null;
}
