import { Injectable } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import { EventForForwarding, FORWARDING_DONE, ForwardingEventRepository } from '@app/database';
import { SegmentClient, SegmentDeliveryError, SegmentTrackCall, TrackCallFactory, UnmappableEventError } from '@app/segment';

export type ForwardOutcome = 'forwarded' | 'duplicate' | 'already-done';

export interface Attempt {
  number: number;
  max: number;
  /** Segment accepted this event in an earlier attempt, which could not write that down. */
  deliveredMessageId?: string;
}

/**
 * The api adds an event's job just before it commits the event, so a worker can be a moment
 * early; a job whose event never became visible belongs to a callback that was rolled back.
 */
export class EventNotFoundError extends Error {
  constructor(readonly eventId: bigint) {
    super(`event ${eventId} is not in the database`);
  }
}

/**
 * Segment accepted the event, but PostgreSQL did not take the news. The job must remember the
 * delivery (in Redis), or its retry would send the event a second time.
 */
export class DeliveredButNotRecordedError extends Error {
  constructor(
    readonly segmentMessageId: string,
    readonly cause: unknown,
  ) {
    super(`delivered to Segment as ${segmentMessageId}, but not recorded: ${(cause as Error).message}`);
  }
}

@Injectable()
export class SegmentForwardingService {
  constructor(
    private readonly events: ForwardingEventRepository,
    private readonly trackCalls: TrackCallFactory,
    private readonly segment: SegmentClient,
  ) {}

  /**
   * Forwards one stored event to Segment once: its dedupe key is claimed as it is loaded, so that
   * any other delivery of the same event becomes a duplicate. Throws to let BullMQ retry; throws
   * UnrecoverableError when no retry can help. Either way the reason is on the row first.
   */
  async forward(eventId: bigint, attempt: Attempt): Promise<ForwardOutcome> {
    const event = await this.events.claim(eventId);
    if (!event) throw new EventNotFoundError(eventId);
    if (FORWARDING_DONE.has(event.status)) return 'already-done';
    if (attempt.deliveredMessageId) {
      await this.events.markForwarded(event.id, attempt.deliveredMessageId);
      return 'forwarded';
    }
    if (event.dedupeOwner === null) {
      const reason = `event ${event.id} has no dedupe key`;
      await this.events.recordFailedAttempt(event.id, reason, true);
      throw new UnrecoverableError(reason);
    }
    if (event.dedupeOwner !== event.id) {
      await this.events.markDuplicate(event.id, event.dedupeOwner);
      return 'duplicate';
    }

    const call = await this.trackCallOf(event);
    try {
      await this.segment.track(call);
    } catch (error) {
      const permanent = error instanceof SegmentDeliveryError && !error.retryable;
      const reason = (error as Error).message;
      await this.events.recordFailedAttempt(event.id, reason, permanent || attempt.number >= attempt.max);
      throw permanent ? new UnrecoverableError(reason) : error;
    }
    try {
      await this.events.markForwarded(event.id, call.messageId);
    } catch (error) {
      throw new DeliveredButNotRecordedError(call.messageId, error);
    }
    return 'forwarded';
  }

  /** An event that cannot be mapped never will be: it fails at once, with the reason on the row. */
  private async trackCallOf(event: EventForForwarding): Promise<SegmentTrackCall> {
    try {
      return this.trackCalls.trackCallOf(this.trackCalls.mappable(event), event.storedUserId);
    } catch (error) {
      if (!(error instanceof UnmappableEventError)) throw error;
      await this.events.recordFailedAttempt(event.id, error.message, true);
      throw new UnrecoverableError(error.message);
    }
  }
}
