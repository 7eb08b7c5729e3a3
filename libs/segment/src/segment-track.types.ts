/** The version of this bridge, sent as `context.integration.version` (checked against package.json). */
export const BRIDGE_VERSION = '0.1.0';

/** Segment's Email spec names for the seven Mailjet event types. */
export type SegmentEmailEvent =
  | 'Email Delivered'
  | 'Email Opened'
  | 'Email Link Clicked'
  | 'Email Bounced'
  | 'Email Marked as Spam'
  | 'Email Unsubscribed'
  | 'Email Blocked';

export type SegmentProperties = Record<string, string | boolean | number | object>;

export interface SegmentContext {
  integration: { name: 'mailjet'; version: string };
  traits: { email: string };
  ip?: string;
  userAgent?: string;
  location?: { country: string };
}

/** One Segment `track` call: exactly one of userId and anonymousId. */
export type SegmentTrackCall = {
  event: SegmentEmailEvent;
  messageId: string;
  timestamp: string;
  properties: SegmentProperties;
  context: SegmentContext;
} & ({ userId: string; anonymousId?: never } | { anonymousId: string; userId?: never });
