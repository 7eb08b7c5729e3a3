import { Injectable } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import { EventForForwarding, EventOutcome, EventStatus, ForwardingEventRepository } from '@app/database';
import { BridgeMetrics, typeLabel } from '@app/metrics';
import { ForwardEventsJob } from '@app/queue';
import { DeliveryResult, SegmentDeliveryError, SegmentTrackCall, TrackCallFactory, UnmappableEventError } from '@app/segment';
import { SourceDirectory } from '@app/sources';
import { Admission, DestinationVerdict } from './destination-gate';
import { Destination, Destinations, SourceUnreadableError, UnknownSourceError } from './destinations.service';
import { Enrichment } from './enrichment.service';

// A source whose secrets this worker cannot open: its jobs look again this often, without spending an attempt.
const UNREADABLE_RETRY_MS = 30_000;

/** How many of a job's events ended how, in this run. */
export interface JobOutcome {
  forwarded: number;
  duplicate: number;
  /** Ended in an earlier run, or moved to another job (a requeue): not this job's to forward. */
  skipped: number;
  /** Their source is paused: they wait, `queued`, until it is resumed. */
  parked: number;
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

/**
 * The job's destination is failing, or busy with other jobs: the job waits until `retryAt`
 * without spending an attempt (the gate's probes spend them).
 */
export class DestinationWaitError extends Error {
  constructor(
    readonly retryAt: number,
    reason: string,
  ) {
    super(`not sent: ${reason}`);
  }
}

type Outgoing = { event: EventForForwarding; call: SegmentTrackCall };

/** A job's way through one destination's gate: left once, with what the delivery said. */
class Passage {
  private left = false;

  constructor(
    readonly destination: Destination | undefined,
    readonly admission: Admission,
  ) {}

  leave(verdict: DestinationVerdict, retryAfterMs?: number): void {
    // A deleted source's events are failed without a delivery: its gate is not entered.
    if (this.left || !this.admission.admitted || !this.destination || this.destination.source.deleted) return;
    this.left = true;
    this.destination.gate.leave(this.admission, verdict, retryAfterMs);
  }
}

@Injectable()
export class SegmentForwardingService {
  constructor(
    private readonly events: ForwardingEventRepository,
    private readonly trackCalls: TrackCallFactory,
    private readonly destinations: Destinations,
    private readonly enrichment: Enrichment,
    private readonly sources: SourceDirectory,
    private readonly metrics: BridgeMetrics,
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
    // A job of one source (every job since sources) asks its destination's gate before anything.
    const passages = new Map<number, Passage>();
    if (job.sourceId !== undefined) {
      const passage = await this.enter(job.sourceId);
      if (!passage.admission.admitted) {
        // A gate's wait is short and its reason is the destination's; a source this worker cannot
        // open waits until someone fixes SECRETS_KEY, so its events say why (best effort: the wait holds anyway).
        if (!passage.destination) await this.events.noteWaiting(jobId, job.eventIds, `waiting: ${passage.admission.reason}`).catch(() => undefined);
        throw new DestinationWaitError(passage.admission.retryAt, passage.admission.reason);
      }
      passages.set(job.sourceId, passage);
    }
    try {
      return await this.forwardAdmitted(jobId, job, attempt, passages);
    } finally {
      // A gate not used by a delivery (an error before it, nothing to send) learns nothing.
      for (const passage of passages.values()) passage.leave('none');
    }
  }

  private async enter(sourceId: number): Promise<Passage> {
    let destination: Destination;
    try {
      destination = await this.destinations.of(sourceId);
    } catch (error) {
      if (!(error instanceof SourceUnreadableError)) throw error;
      return new Passage(undefined, { admitted: false, retryAt: Date.now() + UNREADABLE_RETRY_MS, reason: error.message });
    }
    return new Passage(destination, destination.source.deleted ? { admitted: true, probe: false } : destination.gate.enter());
  }

  private async forwardAdmitted(jobId: string, job: ForwardEventsJob, attempt: Attempt, passages: Map<number, Passage>): Promise<JobOutcome> {
    const events = await this.events.claim(jobId, job.eventIds, [...job.delivered.keys()]);
    if (events.length === 0) throw new EventsNotFoundError(jobId);
    const lastAttempt = attempt.number >= attempt.max;
    const outcomes: EventOutcome[] = [];
    const toSend: Outgoing[] = [];
    let skipped = 0;
    let parked = 0;

    for (const event of events) {
      const delivered = job.delivered.get(event.id);
      if (delivered && event.status !== EventStatus.forwarded) {
        // Segment has it, whatever happened to the row meanwhile (a requeue may have moved it on).
        outcomes.push({ id: event.id, status: EventStatus.forwarded, segmentMessageId: delivered });
      } else if (!event.inThisJob || event.status !== EventStatus.queued) {
        skipped++;
      } else if (event.parked) {
        parked++;
      } else if (event.sourceDeleted) {
        outcomes.push({ id: event.id, status: EventStatus.failed, reason: `its source (${event.sourceId}) was deleted before it was forwarded` });
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

    await this.enrichment.enrich(toSend);
    const { sent, waitUntil } = await this.deliverPerSource(toSend, passages);
    const deliveredNow = new Map<bigint, string>();
    /** Failed because no attempt is left (the others failed for good at once: rejected). */
    const exhausted = new Set<bigint>();
    let retryable: SegmentDeliveryError | undefined;
    let retryableCount = 0;
    sent.forEach(({ event, call, result }) => {
      if (result.accepted) {
        deliveredNow.set(event.id, call.messageId);
        outcomes.push({ id: event.id, status: EventStatus.forwarded, segmentMessageId: call.messageId });
        return;
      }
      const { error } = result;
      const final = !error.retryable || lastAttempt;
      outcomes.push({ id: event.id, status: final ? EventStatus.failed : EventStatus.queued, reason: error.message });
      if (final && error.retryable) exhausted.add(event.id);
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
    this.count(outcomes, events, exhausted);
    if (retryable) throw new RetryableEventsError(retryableCount, retryable);
    if (waitUntil) throw new DestinationWaitError(waitUntil.retryAt, waitUntil.reason);
    const failed = outcomes.filter((outcome) => outcome.status === EventStatus.failed);
    // The job fails too, so that the queue dashboard shows it; the others of its events are recorded.
    if (failed.length > 0) throw new UnrecoverableError(`${failed.length} of ${events.length} event(s) failed: ${(failed[0] as { reason: string }).reason}`);
    const count = (status: EventStatus) => outcomes.filter((outcome) => outcome.status === status).length;
    return { forwarded: count(EventStatus.forwarded), duplicate: count(EventStatus.duplicate), skipped, parked };
  }

  /** The job's recorded outcomes, in the worker's metrics. */
  private count(outcomes: readonly EventOutcome[], events: readonly EventForForwarding[], exhausted: ReadonlySet<bigint>): void {
    const byId = new Map(events.map((event) => [event.id, event]));
    const now = Date.now() / 1000;
    for (const outcome of outcomes) {
      const event = byId.get(outcome.id)!;
      const source = this.sources.byId(event.sourceId)?.slug ?? String(event.sourceId);
      if (outcome.status === EventStatus.forwarded) {
        this.metrics.eventsForwarded.inc({ source, type: typeLabel(event.eventType) });
        this.metrics.eventDelivery.observe({ source }, Math.max(0, now - event.receivedAt));
      } else if (outcome.status === EventStatus.duplicate) {
        this.metrics.eventsDuplicate.inc({ source });
      } else if (outcome.status === EventStatus.failed) {
        this.metrics.eventsFailed.inc({ source, reason: exhausted.has(outcome.id) ? 'attempts_exhausted' : 'rejected' });
      }
    }
  }

  /**
   * Sends each source's calls to its own destination, all at once. A source not admitted by its
   * gate (a job queued before sources, which mixes them) sends nothing now: `waitUntil` says when
   * to come back. A source not known (yet) is a failed attempt for its events.
   */
  private async deliverPerSource(
    toSend: readonly Outgoing[],
    passages: Map<number, Passage>,
  ): Promise<{ sent: Array<Outgoing & { result: DeliveryResult }>; waitUntil?: { retryAt: number; reason: string } }> {
    const bySource = new Map<number, Outgoing[]>();
    for (const outgoing of toSend) {
      const group = bySource.get(outgoing.event.sourceId) ?? [];
      group.push(outgoing);
      bySource.set(outgoing.event.sourceId, group);
    }
    let waitUntil: { retryAt: number; reason: string } | undefined;
    const sent = await Promise.all(
      [...bySource].map(async ([sourceId, group]) => {
        let passage = passages.get(sourceId);
        if (!passage) {
          try {
            passage = await this.enter(sourceId);
          } catch (error) {
            if (!(error instanceof UnknownSourceError)) throw error;
            const refusal: DeliveryResult = { accepted: false, error: new SegmentDeliveryError(error.message, true) };
            return group.map((outgoing) => ({ ...outgoing, result: refusal }));
          }
          passages.set(sourceId, passage);
        }
        const { admission } = passage;
        if (!admission.admitted) {
          if (!waitUntil || admission.retryAt > waitUntil.retryAt) waitUntil = { retryAt: admission.retryAt, reason: admission.reason };
          return [];
        }
        const results = await passage.destination!.client.deliver(group.map(({ call }) => call));
        passage.leave(verdictOf(results), retryAfterOf(results));
        return group.map((outgoing, index) => ({ ...outgoing, result: results[index] }));
      }),
    );
    return { sent: sent.flat(), waitUntil };
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

/** A destination that answered anything (even a refusal) is up; one that only failed to answer, or answered 5xx, is failing. */
function verdictOf(results: readonly DeliveryResult[]): DestinationVerdict {
  if (results.length === 0) return 'none';
  return results.some((result) => result.accepted || !result.error.retryable) ? 'answered' : 'failed';
}

function retryAfterOf(results: readonly DeliveryResult[]): number | undefined {
  const waits = results.flatMap((result) => (!result.accepted && result.error.retryAfterMs ? [result.error.retryAfterMs] : []));
  return waits.length > 0 ? Math.max(...waits) : undefined;
}
