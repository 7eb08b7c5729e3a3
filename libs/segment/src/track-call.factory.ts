import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { IdentityRepository, StoredMailjetEvent } from '@app/database';
import { isMailjetEventType, parseMailjetBody } from '@app/mailjet';
import { MappableEvent, needsStoredIdentity, toSegmentTrackCall } from './segment-track.mapper';
import { SegmentTrackCall } from './segment-track.types';

export class UnmappableEventError extends Error {}

/** The Segment call a stored event maps to, with its identity resolved: for the worker and the admin API. */
@Injectable()
export class TrackCallFactory {
  constructor(
    private readonly identities: IdentityRepository,
    private readonly config: AppConfig,
  ) {}

  async trackCallOf(stored: StoredMailjetEvent): Promise<SegmentTrackCall> {
    const event = this.mappable(stored);
    const storedUserId = needsStoredIdentity(event.payload, this.config.userIdPayloadKey)
      ? await this.identities.findUserId(event.email)
      : null;
    return toSegmentTrackCall(event, { userIdPayloadKey: this.config.userIdPayloadKey, storedUserId });
  }

  /** For a caller that loaded the recipient's stored userId together with the event (the worker). */
  trackCallWithIdentity(stored: StoredMailjetEvent, storedUserId: string | null): SegmentTrackCall {
    return toSegmentTrackCall(this.mappable(stored), { userIdPayloadKey: this.config.userIdPayloadKey, storedUserId });
  }

  private mappable(stored: StoredMailjetEvent): MappableEvent {
    const { eventType, email, eventTime, dedupeKey } = stored;
    if (!isMailjetEventType(eventType) || email === null || eventTime === null || dedupeKey === null) {
      throw new UnmappableEventError(`event ${stored.id} is not a valid Mailjet event`);
    }
    const [{ payload }] = parseMailjetBody(stored.payload);
    return { type: eventType, payload, email, messageId: stored.messageId, time: eventTime, dedupeKey };
  }
}
