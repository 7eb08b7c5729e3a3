import { Injectable } from '@nestjs/common';
import { EventForForwarding, EventOutcome, EventStatus, ForwardingEventRepository } from '@app/database';
import { UnrecoverableError } from 'bullmq';
import { ForwardEventsJob } from '@app/queue';
import { SegmentClient, SegmentDeliveryError, SegmentTrackCall, TrackCallFactory, UnmappableEventError } from '@app/segment';

/** How many of a job's events ended how, in this run. */
export interface JobOutcome {
  forwarded: number;
  duplicate: number;
  /** Ended in an earlier run, or moved to another job (a requeue): not this job's to forward. */
  skipped: number;
}

export interface Attempt {
  number: number;
  max: number;
}

/**
 * The api adds a job just before it commits its events, so a worker can be a moment early; a job
 * whose events never became visible belongs to a callback that was rolled back.
 */
export class EventsNotFoundError extends Error {
  constructor(readonly jobId: string) {
    super(`the events of job ${jobId} are not in the database`);
  }
}

/**
 * Segment accepted events, but PostgreSQL did not take the news. The job must remember the
 * deliveries (in Redis), or its retry would send those events a second time.
 */
export class DeliveredButNotRecordedError extends Error {
  constructor(
    /** Event id -> Segment messageId. */
    readonly delivered: Map<bigint, string>,
    readonly cause: unknown,
  ) {
    super(`${delivered.size} event(s) delivered to Segment, but not recorded: ${(cause as Error).message}`);
  }
}

/**
 * Some events of the job failed an attempt that may succeed later: their reasons are on their rows,
 * and BullMQ retries the job, which sends only the events not forwarded yet.
 */
export class RetryableEventsError extends SegmentDeliveryError {
  constructor(failed: number, cause: SegmentDeliveryError) {
    super(`${failed} event(s) not delivered: ${cause.message}`, true, cause.status, cause.retryAfterMs);
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
   * Forwards the events of one job, each once: their dedupe keys are claimed as they are loaded,
   * so that any other delivery of the same event becomes a duplicate. Each event's outcome is
   * written before this returns or throws: forwarded, duplicate, failed for good (a refusal no
   * retry can fix: UnrecoverableError fails the job too, for the dashboard), or a failed attempt,
   * after which RetryableEventsError lets BullMQ retry the job (on its last attempt the events are
   * `failed`, and the job fails too).
   */
  async forward(jobId: string, job: ForwardEventsJob, attempt: Attempt): Promise<JobOutcome> {
    const events = await this.events.claim(jobId, job.eventIds);
    if (events.length === 0) throw new EventsNotFoundError(jobId);
    const lastAttempt = attempt.number >= attempt.max;
    const outcomes: EventOutcome[] = [];
    const toSend: Array<{ event: EventForForwarding; call: SegmentTrackCall }> = [];
    let skipped = 0;

    for (const event of events) {
      const delivered = job.delivered.get(event.id);
      if (delivered && event.status !== EventStatus.forwarded) {
        // Segment has it, whatever happened to the row meanwhile (a requeue may have moved it on).
        outcomes.push({ id: event.id, status: EventStatus.forwarded, segmentMessageId: delivered });
      } else if (!event.inThisJob || event.status !== EventStatus.queued) {
        skipped++;
      } else if (event.dedupeOwner === null) {
        outcomes.push({ id: event.id, status: EventStatus.failed, reason: `event ${event.id} has no dedupe key` });
      } else if (event.dedupeOwner !== event.id) {
        outcomes.push({ id: event.id, status: EventStatus.duplicate, duplicateOf: event.dedupeOwner });
      } else {
        const call = this.trackCallOf(event);
        if (call instanceof UnmappableEventError) outcomes.push({ id: event.id, status: EventStatus.failed, reason: call.message });
        else toSend.push({ event, call });
      }
    }

    const results = await this.segment.deliver(toSend.map(({ call }) => call));
    const deliveredNow = new Map<bigint, string>();
    let retryable: SegmentDeliveryError | undefined;
    let retryableCount = 0;
    toSend.forEach(({ event, call }, index) => {
      const result = results[index];
      if (result.accepted) {
        deliveredNow.set(event.id, call.messageId);
        outcomes.push({ id: event.id, status: EventStatus.forwarded, segmentMessageId: call.messageId });
        return;
      }
      const { error } = result;
      const final = !error.retryable || lastAttempt;
      outcomes.push({ id: event.id, status: final ? EventStatus.failed : EventStatus.queued, reason: error.message });
      if (error.retryable) {
        retryableCount++;
        // The longest Retry-After asked for is the one to wait.
        if (!retryable || (error.retryAfterMs ?? 0) > (retryable.retryAfterMs ?? 0)) retryable = error;
      }
    });

    try {
      await this.events.recordOutcomes(jobId, outcomes);
    } catch (error) {
      if (deliveredNow.size > 0) throw new DeliveredButNotRecordedError(deliveredNow, error);
      throw error;
    }
    if (retryable) throw new RetryableEventsError(retryableCount, retryable);
    const failed = outcomes.filter((outcome) => outcome.status === EventStatus.failed);
    // The job fails too, so that the queue dashboard shows it; the others of its events are recorded.
    if (failed.length > 0) throw new UnrecoverableError(`${failed.length} of ${events.length} event(s) failed: ${(failed[0] as { reason: string }).reason}`);
    const count = (status: EventStatus) => outcomes.filter((outcome) => outcome.status === status).length;
    return { forwarded: count(EventStatus.forwarded), duplicate: count(EventStatus.duplicate), skipped };
  }

  /** An event that cannot be mapped never will be: it fails at once, with the reason on its row. */
  private trackCallOf(event: EventForForwarding): SegmentTrackCall | UnmappableEventError {
    try {
      return this.trackCalls.trackCallOf(this.trackCalls.mappable(event), event.storedUserId);
    } catch (error) {
      if (error instanceof UnmappableEventError) return error;
      throw error;
    }
  }
}
