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

export const compareIds = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
