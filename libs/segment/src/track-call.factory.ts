import { Injectable } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { IdentityRepository, StoredMailjetEvent } from '@app/database';
import { isMailjetEventType, parseMailjetBody } from '@app/mailjet';
import { needsStoredIdentity, toSegmentTrackCall } from './segment-track.mapper';
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
    const { eventType, email, eventTime, dedupeKey } = stored;
    if (!isMailjetEventType(eventType) || email === null || eventTime === null || dedupeKey === null) {
      throw new UnmappableEventError(`event ${stored.id} is not a valid Mailjet event`);
    }
    const [{ payload }] = parseMailjetBody(stored.payload);
    const { userIdPayloadKey } = this.config;
    const storedUserId = needsStoredIdentity(payload, userIdPayloadKey) ? await this.identities.findUserId(email) : null;
    return toSegmentTrackCall(
      { type: eventType, payload, email, messageId: stored.messageId, time: eventTime, dedupeKey },
      { userIdPayloadKey, storedUserId },
    );
  }
}
