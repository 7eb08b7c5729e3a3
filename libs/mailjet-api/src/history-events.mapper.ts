import { linkHashOf, MailjetEventType } from '@app/mailjet';

/** What a backfill knows of one message: its `/message` row (IDs as exact digits). */
export interface BackfillMessage {
  ID: string;
  UUID?: string | null;
  ContactAlt?: string | null;
  ContactID?: string | number | null;
  CampaignID?: string | number | null;
  CustomID?: string | null;
}

/** One row of `/messagehistory/{MessageID}`. */
export interface BackfillHistoryRow {
  EventAt: number;
  EventType: string;
  State?: string | null;
  Comment?: string | null;
  Useragent?: string | null;
}

/** One row of `/clickstatistics`: where a click went. */
export interface BackfillClick {
  MessageID?: string;
  Url: string;
  ClickedAt: string;
}

/** A stored or backfilled event, as the known-event match compares them. */
export interface ComparableEvent {
  messageId: string;
  type: string;
  /** Unix seconds. */
  time: number;
  /** A click's link, as the end of its dedupe key holds it (linkHashOf); null for other types. */
  link: string | null;
}

// messagehistory names the types in the past tense; the webhook does not.
const WEBHOOK_TYPE_OF: Record<string, MailjetEventType> = {
  sent: 'sent',
  opened: 'open',
  clicked: 'click',
  bounced: 'bounce',
  blocked: 'blocked',
  unsub: 'unsub',
  spam: 'spam',
};

const text = (value: unknown) => (value === null || value === undefined ? '' : String(value));

/** A JSON integer written as its exact digits (an ID may exceed 2^53), or 0 when there is none. */
const integer = (value: unknown) => (/^\d{1,20}$/.test(text(value)) ? text(value) : '0');

/**
 * The Mailjet-shaped events of one message's history, each as the JSON text a webhook would have
 * posted: the same fields the webhook's parser and mapper read, so that a backfilled event is
 * stored, deduplicated and forwarded like a received one. History rows carry no IP, country or
 * link: a click takes its URL from the click statistics nearest in time. Rows of types the webhook
 * does not post are left out.
 */
export function eventsOfHistory(message: BackfillMessage, history: readonly BackfillHistoryRow[], clicks: readonly BackfillClick[]): Array<{ json: string; event: ComparableEvent }> {
  const unusedClicks = clicks
    .filter((click) => click.MessageID === undefined || click.MessageID === message.ID)
    .map((click) => ({ url: click.Url, time: Date.parse(click.ClickedAt) / 1000 }));
  const events: Array<{ json: string; event: ComparableEvent }> = [];
  for (const row of history) {
    const type = WEBHOOK_TYPE_OF[row.EventType];
    if (!type || !Number.isInteger(row.EventAt)) continue;
    const fields: Array<[string, string]> = [
      ['event', JSON.stringify(type)],
      ['time', String(row.EventAt)],
      ['MessageID', integer(message.ID)],
      ['Message_GUID', JSON.stringify(text(message.UUID))],
      ['email', JSON.stringify(text(message.ContactAlt))],
      ['mj_campaign_id', integer(message.CampaignID)],
      ['mj_contact_id', integer(message.ContactID)],
      ['customcampaign', '""'],
      ['CustomID', JSON.stringify(text(message.CustomID))],
      ['Payload', '""'],
    ];
    let url: string | null = null;
    if (type === 'click') {
      url = takeNearestClick(unusedClicks, row.EventAt);
      fields.push(['url', JSON.stringify(url ?? '')]);
    }
    if (type === 'open' || type === 'click') fields.push(['agent', JSON.stringify(text(row.Useragent))]);
    if (type === 'bounce' || type === 'blocked') {
      fields.push(['error_related_to', '""'], ['error', JSON.stringify(text(row.State))], ['comment', JSON.stringify(text(row.Comment))]);
    }
    if (type === 'bounce') fields.push(['blocked', 'false'], ['hard_bounce', String(/hard/i.test(text(row.State)))]);
    const json = `{${fields.map(([key, value]) => `"${key}":${value}`).join(',')}}`;
    events.push({ json, event: { messageId: integer(message.ID), type, time: row.EventAt, link: type === 'click' ? linkHashOf(url ?? '') : null } });
  }
  return events;
}

function takeNearestClick(clicks: Array<{ url: string; time: number }>, at: number): string | null {
  let nearest = -1;
  for (let i = 0; i < clicks.length; i++) {
    if (nearest === -1 || Math.abs(clicks[i].time - at) < Math.abs(clicks[nearest].time - at)) nearest = i;
  }
  return nearest === -1 ? null : clicks.splice(nearest, 1)[0].url;
}

/**
 * Which backfilled events are already stored: same message, type and (for clicks) URL, with a
 * time within `toleranceSeconds` (the history's time may differ from the webhook's by a second).
 * Each stored event accounts for one backfilled event at most, the nearest in time.
 */
export function knownEvents(candidates: readonly ComparableEvent[], stored: readonly ComparableEvent[], toleranceSeconds: number): boolean[] {
  const sameEvent = (a: ComparableEvent, b: ComparableEvent) =>
    a.messageId === b.messageId && a.type === b.type && (a.type !== 'click' || a.link === b.link);
  const available = stored.map((event) => ({ event, used: false }));
  return candidates.map((candidate) => {
    let best: (typeof available)[number] | undefined;
    for (const entry of available) {
      if (entry.used || !sameEvent(candidate, entry.event)) continue;
      const distance = Math.abs(entry.event.time - candidate.time);
      if (distance <= toleranceSeconds && (!best || distance < Math.abs(best.event.time - candidate.time))) best = entry;
    }
    if (best) best.used = true;
    return best !== undefined;
  });
}
