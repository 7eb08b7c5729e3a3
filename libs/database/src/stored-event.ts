import { EventStatus } from './generated/prisma/enums';

/** A stored event as the worker and the admin API read it. */
export interface StoredMailjetEvent {
  id: bigint;
  /** The raw JSON text, exactly as received. */
  payload: string;
  eventType: string;
  status: EventStatus;
  email: string | null;
  messageId: string | null;
  eventTime: number | null;
  dedupeKey: string | null;
  attempts: number;
}

/** Statuses after which an event is never forwarded again (but by an explicit requeue). */
export const FORWARDING_DONE: ReadonlySet<EventStatus> = new Set<EventStatus>([
  EventStatus.forwarded,
  EventStatus.duplicate,
  EventStatus.invalid,
]);

export const compareIds = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
