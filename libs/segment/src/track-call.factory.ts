import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { isMailjetEventType, parseMailjetBody, toEventRecord } from '@app/mailjet';
import { MappableEvent, needsStoredIdentity, toSegmentTrackCall } from './segment-track.mapper';
import { SegmentTrackCall } from './segment-track.types';

export class UnmappableEventError extends Error {}

/** What the mapping needs of a stored event: its raw text, as received, and the key fields stored with it. */
export interface StoredEventFields {
  id: bigint;
  payload: string;
  eventType: string;
  email: string | null;
  messageId: string | null;
  eventTime: number | null;
  /** The key the worker claimed: the Segment messageId derives from it. */
  dedupeKey: string | null;
}

/**
 * The Segment call a stored event maps to, for the worker and the admin API. Pure: the caller
 * looks up the recipient's stored userId when `needsStoredIdentity` says so.
 */
@Injectable()
export class TrackCallFactory {
  constructor(private readonly config: AppConfig) {}

  /** Parses and validates the stored text; an event that could not be forwarded throws UnmappableEventError. */
  mappable(stored: StoredEventFields): MappableEvent {
    let received;
    try {
      [received] = parseMailjetBody(stored.payload);
    } catch (error) {
      throw new UnmappableEventError(`event ${stored.id} cannot be read: ${(error as Error).message}`);
    }
    // The same checks as at ingest, so that an event stored before a check was added cannot slip through.
    const { invalidReason } = toEventRecord(received);
    const { eventType, email, eventTime, dedupeKey } = stored;
    if (invalidReason !== null || !isMailjetEventType(eventType) || email === null || eventTime === null || dedupeKey === null) {
      throw new UnmappableEventError(`event ${stored.id} is not a valid Mailjet event: ${invalidReason ?? 'missing key fields'}`);
    }
    return { type: eventType, payload: received.payload, email, messageId: stored.messageId, time: eventTime, dedupeKey };
  }

  /** Whether the recipient's stored userId is needed: the event's Payload names none. */
  needsStoredIdentity(event: MappableEvent): boolean {
    return needsStoredIdentity(event.payload, this.config.userIdPayloadKey);
  }

  trackCallOf(event: MappableEvent, storedUserId: string | null): SegmentTrackCall {
    return toSegmentTrackCall(event, { userIdPayloadKey: this.config.userIdPayloadKey, storedUserId });
  }
}
