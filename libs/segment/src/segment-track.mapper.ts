import { createHash } from 'node:crypto';
import { MailjetEventPayload, MailjetEventType } from '@app/mailjet';
import { BRIDGE_VERSION, SegmentEmailEvent, SegmentProperties, SegmentTrackCall } from './segment-track.types';

interface EventMapping {
  event: SegmentEmailEvent;
  /** Segment property name -> Mailjet field, for the fields this type adds. */
  properties: Record<string, keyof MailjetEventPayload>;
  /** Open, click and unsub come from the recipient's client: ip, user agent and country. */
  clientContext: boolean;
}

// A Record over the type union: a Mailjet type without a mapping does not compile.
const EVENT_MAPPINGS: Record<MailjetEventType, EventMapping> = {
  sent: { event: 'Email Delivered', properties: { smtp_reply: 'smtp_reply' }, clientContext: false },
  open: { event: 'Email Opened', properties: {}, clientContext: true },
  click: { event: 'Email Link Clicked', properties: { link_url: 'url' }, clientContext: true },
  bounce: {
    event: 'Email Bounced',
    properties: {
      hard_bounce: 'hard_bounce',
      blocked: 'blocked',
      error_related_to: 'error_related_to',
      error: 'error',
      comment: 'comment',
    },
    clientContext: false,
  },
  spam: { event: 'Email Marked as Spam', properties: { source: 'source' }, clientContext: false },
  unsub: { event: 'Email Unsubscribed', properties: { list_id: 'mj_list_id' }, clientContext: true },
  blocked: {
    event: 'Email Blocked',
    properties: { error_related_to: 'error_related_to', error: 'error' },
    clientContext: false,
  },
};

const COMMON_PROPERTIES: Record<string, keyof MailjetEventPayload> = {
  message_guid: 'Message_GUID',
  campaign_id: 'mj_campaign_id',
  campaign_name: 'customcampaign',
  contact_id: 'mj_contact_id',
  custom_id: 'CustomID',
};

/** What the mapper needs besides the event: the validated key fields, stored with the event. */
export interface MappableEvent {
  type: MailjetEventType;
  payload: MailjetEventPayload;
  email: string;
  /** Exact MessageID digits; null when Mailjet sent 0 (the GUID identifies the message then). */
  messageId: string | null;
  time: number;
  dedupeKey: string;
}

export interface IdentityOptions {
  /** Key of the userId in the event's Payload JSON (`USER_ID_PAYLOAD_KEY`). */
  userIdPayloadKey: string;
  /** The userId stored for the recipient's email, if any. */
  storedUserId: string | null;
}

/** Segment's dedupe id for an event: the same for every delivery of it, and under 100 characters. */
export function segmentMessageIdOf(dedupeKey: string): string {
  return `mailjet-${createHash('sha256').update(dedupeKey).digest('hex')}`;
}

/** Segment ids are strings; Mailjet's may be numbers (or exact digit strings, when huge). */
function asPropertyValue(field: keyof MailjetEventPayload, value: unknown): string | boolean | number | object | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'boolean') return value;
  if (field === 'Payload') return parsedPayload(value) ?? String(value);
  return typeof value === 'object' ? value : String(value);
}

/** The event payload set at send time: a JSON text most of the time. */
function parsedPayload(value: unknown): object | undefined {
  if (typeof value === 'object' && value !== null) return value;
  // Most payloads are empty; JSON.parse would throw on them, and exceptions are slow.
  if (typeof value !== 'string' || !/^\s*[[{]/.test(value)) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the stored identity table must be asked: the event's Payload names no userId. */
export function needsStoredIdentity(payload: MailjetEventPayload, userIdPayloadKey: string): boolean {
  return userIdFromPayload(payload, userIdPayloadKey) === undefined;
}

function userIdFromPayload(payload: MailjetEventPayload, key: string): string | undefined {
  const parsed = parsedPayload(payload.Payload) as Record<string, unknown> | undefined;
  const value = parsed && !Array.isArray(parsed) ? parsed[key] : undefined;
  return (typeof value === 'string' && value !== '') || typeof value === 'number' ? String(value) : undefined;
}

function propertiesOf(event: MappableEvent, mapping: EventMapping): SegmentProperties {
  // email_id from the stored digits: the parsed payload may hold MessageID as a number.
  const properties: SegmentProperties = event.messageId === null ? {} : { email_id: event.messageId };
  const fields = { ...COMMON_PROPERTIES, payload: 'Payload', ...mapping.properties };
  for (const [property, field] of Object.entries(fields)) {
    const value = asPropertyValue(field, event.payload[field]);
    if (value !== undefined) properties[property] = value;
  }
  return properties;
}

/** Maps a stored, valid Mailjet event to the Segment `track` call it stands for. Pure. */
export function toSegmentTrackCall(event: MappableEvent, identity: IdentityOptions): SegmentTrackCall {
  const mapping = EVENT_MAPPINGS[event.type];
  const { payload } = event;
  const context: SegmentTrackCall['context'] = {
    integration: { name: 'mailjet', version: BRIDGE_VERSION },
    traits: { email: event.email },
  };
  if (mapping.clientContext) {
    if (typeof payload.ip === 'string' && payload.ip) context.ip = payload.ip;
    if (typeof payload.agent === 'string' && payload.agent) context.userAgent = payload.agent;
    if (typeof payload.geo === 'string' && payload.geo) context.location = { country: payload.geo };
  }
  const userId = userIdFromPayload(payload, identity.userIdPayloadKey) ?? identity.storedUserId ?? undefined;
  const base = {
    event: mapping.event,
    messageId: segmentMessageIdOf(event.dedupeKey),
    timestamp: new Date(event.time * 1000).toISOString(),
    properties: propertiesOf(event, mapping),
    context,
  };
  return userId !== undefined ? { ...base, userId } : { ...base, anonymousId: event.email };
}
