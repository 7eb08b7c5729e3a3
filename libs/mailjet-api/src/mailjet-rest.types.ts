import { MailjetEventType } from '@app/mailjet';

/**
 * A Mailjet id as its decimal digits. Ids exceed 2^53 (`MessageID` 1152921504606846976 and up),
 * so the client hands every id over as a string, small ones too: a field never switches type
 * with the size of its value, and ids compare and store as text.
 */
export type MailjetId = string;

/** A list answer: `Count` rows in this page, `Total` matching in all. */
export interface MailjetListAnswer<T> {
  Count: number;
  Total: number;
  Data: T[];
}

export type CallbackStatus = 'alive' | 'dead';
/** 1: one event per POST (Mailjet's default); 2: grouped arrays, at most one POST a second. */
export type CallbackVersion = 1 | 2;

/** `eventcallbackurl`: one webhook registration; one per (EventType, IsBackup) and API key. */
export interface EventCallbackUrl {
  ID: MailjetId;
  APIKeyID: MailjetId;
  EventType: MailjetEventType;
  Url: string;
  /** `dead`: suspended after failing; Mailjet revives it when its Url changes. */
  Status: CallbackStatus;
  IsBackup: boolean;
  Version: CallbackVersion;
}

/** The writable fields of an `eventcallbackurl` row, for POST (create) and PUT (partial update). */
export type EventCallbackUrlFields = Partial<Pick<EventCallbackUrl, 'EventType' | 'Url' | 'Status' | 'IsBackup' | 'Version'>>;

/** `message`: one message sent. Read with `ShowSubject`, `ShowContactAlt`, `ShowCustomID`. */
export interface MailjetMessage {
  /** The webhook's `MessageID`. */
  ID: MailjetId;
  /** The webhook's `Message_GUID`. */
  UUID: string;
  /** RFC 3339, to the second. */
  ArrivedAt: string;
  ContactID: MailjetId;
  /** The recipient's address; empty unless the read asked `ShowContactAlt=true`. */
  ContactAlt: string;
  CampaignID: MailjetId;
  /**
   * The message's current status, as documented: queued, sent, opened, clicked, bounce, spam,
   * unsub, blocked, hardbounced, softbounced, deferred. Kept a string: Mailjet may add others.
   */
  Status: string;
  /** With `ShowSubject=true`. */
  Subject?: string;
  /** With `ShowCustomID=true`. */
  CustomID?: string;
}

/** The event types of `messagehistory`: named unlike the webhook's (`opened` = `open`, ...). */
export const MESSAGE_HISTORY_EVENT_TYPES = ['sent', 'opened', 'clicked', 'bounced', 'blocked', 'unsub', 'spam'] as const;
export type MessageHistoryEventType = (typeof MESSAGE_HISTORY_EVENT_TYPES)[number];

/** `messagehistory/{MessageID}`: one event of one message. No URL, IP or country. */
export interface MessageHistoryRow {
  /** Unix seconds. */
  EventAt: number;
  EventType: MessageHistoryEventType;
  State: string;
  Comment: string;
  Useragent: string;
  UseragentID: MailjetId;
}

/** `clickstatistics`: one click, with the URL `messagehistory` lacks. */
export interface ClickStatisticsRow {
  MessageID: MailjetId;
  ContactID: MailjetId;
  Url: string;
  UserAgent: string;
  /** RFC 3339 date-time. */
  ClickedAt: string;
  /** Seconds between the message's arrival and the click. */
  ClickedDelay: number;
  ID: MailjetId;
}

/** `contactslist/{ID}`: the name behind a webhook's `mj_list_id`. */
export interface ContactsList {
  ID: MailjetId;
  Name: string;
}
