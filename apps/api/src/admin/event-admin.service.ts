import { ConflictException, Injectable, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { AdminEventRepository, EventDetail, EventFilter, EventStatus, EventSummary, IdentityRepository } from '@app/database';
import { isRedisUnavailable, PARKED_JOB_ID } from '@app/queue';
import { TrackCallFactory, UnmappableEventError } from '@app/segment';
import { EventEnqueuer } from '../outbox/event-enqueuer.service';
import { ListEventsQuery, RequeueBody } from './admin.dto';
import { SourceAdminService } from './source-admin.service';

const DEFAULT_PAGE = 50;
const REQUEUE_BATCH = 1000;

export interface EventItem {
  id: string;
  /** The slug of the source whose callback URL received it. */
  source: string;
  /** `webhook`, or `backfill` for an event pulled from Mailjet's REST API. */
  origin: 'webhook' | 'backfill';
  messageId: string | null;
  messageGuid: string | null;
  type: string;
  email: string | null;
  time: string | null;
  status: EventStatus;
  attempts: number;
  lastError: string | null;
  receivedAt: string;
  forwardedAt: string | null;
}

function itemOf(event: EventSummary, source: string): EventItem {
  return {
    id: event.id.toString(),
    source,
    origin: event.origin,
    messageId: event.messageId,
    messageGuid: event.messageGuid,
    type: event.eventType,
    email: event.email,
    time: event.eventTime?.toISOString() ?? null,
    status: event.status,
    attempts: event.attempts,
    lastError: event.lastError,
    receivedAt: event.receivedAt.toISOString(),
    forwardedAt: event.forwardedAt?.toISOString() ?? null,
  };
}

function filterOf(
  query: { status?: EventStatus; type?: string; email?: string; messageId?: string; from?: string; to?: string },
  sourceId: number | undefined,
): EventFilter {
  return {
    sourceId,
    status: query.status,
    type: query.type,
    email: query.email,
    messageId: query.messageId,
    from: query.from ? new Date(query.from) : undefined,
    to: query.to ? new Date(query.to) : undefined,
  };
}

@Injectable()
export class EventAdminService {
  constructor(
    private readonly events: AdminEventRepository,
    private readonly identities: IdentityRepository,
    private readonly trackCalls: TrackCallFactory,
    private readonly enqueuer: EventEnqueuer,
    private readonly sources: SourceAdminService,
  ) {}

  async list(query: ListEventsQuery): Promise<{ items: EventItem[]; nextCursor: string | null }> {
    const limit = query.limit ?? DEFAULT_PAGE;
    // Keyset paging on the id: events that arrive meanwhile have higher ids and never shift a page.
    const filter = filterOf(query, await this.sources.sourceIdOf(query.source));
    const page = await this.events.list(filter, limit + 1, query.cursor ? BigInt(query.cursor) : undefined);
    const items = page.slice(0, limit).map((event) => itemOf(event, this.sources.slugOf(event.sourceId)));
    return { items, nextCursor: page.length > limit ? items[items.length - 1].id : null };
  }

  /**
   * The event with its raw payload exactly as Mailjet sent it, as JSON text: big MessageIDs must
   * not pass through a JS number on the way out either.
   */
  async detailJson(id: bigint): Promise<string> {
    const event = await this.events.findDetail(id);
    if (!event) throw new NotFoundException(`no event ${id}`);
    let segmentCall: unknown = null;
    let mappingError: string | null = null;
    try {
      segmentCall = await this.segmentCallOf(event);
    } catch (error) {
      if (!(error instanceof UnmappableEventError)) throw error;
      mappingError = error.message;
    }
    const fields = {
      id: event.id.toString(),
      source: this.sources.slugOf(event.sourceId),
      origin: event.origin,
      messageId: event.messageId,
      type: event.eventType,
      email: event.email,
      time: event.eventTime === null ? null : new Date(event.eventTime * 1000).toISOString(),
      status: event.status,
      attempts: event.attempts,
      lastError: event.lastError,
      dedupeKey: event.dedupeKey,
      duplicateOf: event.duplicateOf?.toString() ?? null,
      segmentMessageId: event.segmentMessageId,
      receivedAt: event.receivedAt,
      queuedAt: event.queuedAt,
      forwardedAt: event.forwardedAt,
      segmentCall,
      mappingError,
    };
    return `${JSON.stringify(fields).slice(0, -1)},"payload":${event.payload}}`;
  }

  private async segmentCallOf(event: EventDetail) {
    const mappable = this.trackCalls.mappable(event);
    const storedUserId = this.trackCalls.needsStoredIdentity(mappable) ? await this.identities.findUserId(mappable.email) : null;
    return this.trackCalls.trackCallOf(mappable, storedUserId);
  }

  /** One event; a forwarded one only with `force` (a deliberate replay with the same messageId). */
  async requeueOne(id: bigint, force: boolean): Promise<{ id: string; status: 'queued' }> {
    const event = await this.events.findDetail(id);
    if (!event) throw new NotFoundException(`no event ${id}`);
    if (event.status === 'invalid') {
      throw new ConflictException(`event ${id} is invalid (${event.lastError}) and cannot be forwarded`);
    }
    if (event.status === 'duplicate') {
      throw new ConflictException(`event ${id} is a duplicate of event ${event.duplicateOf}; requeue that one`);
    }
    if (event.status === 'forwarded' && !force) {
      throw new ConflictException(`event ${id} was already forwarded; add ?force=true to send it again`);
    }
    if (event.status === 'queued' && event.jobId === PARKED_JOB_ID) {
      throw new ConflictException(
        `event ${id} waits for its source (${this.sources.slugOf(event.sourceId)}) to be resumed: PATCH /admin/sources/<slug> {"paused": false}`,
      );
    }
    if (event.status === 'queued') {
      // Its job may be running or waiting out a retry: moving the event to another job then would
      // send it twice. Only a job that Redis lost, or that finished without it, gives it up.
      if ((await this.restoreStranded([{ id, jobId: event.jobId }])) === 0) {
        throw new ConflictException(`event ${id} is queued in job ${event.jobId}, which is still to run; it needs no requeue`);
      }
      return { id: id.toString(), status: 'queued' };
    }
    const from: EventStatus[] = force ? ['failed', 'received', 'forwarded'] : ['failed', 'received'];
    if (!(await this.events.takeOneForRequeue(id, from)) || (await this.queue([id])) === 0) {
      throw new ConflictException(`event ${id} changed status meanwhile; look at it again`);
    }
    return { id: id.toString(), status: 'queued' };
  }

  /**
   * Every event matching the filter, including ones whose job is long gone. A requeued event keeps
   * its dedupe key, so one that another delivery forwarded meanwhile becomes a duplicate, not a resend.
   */
  async requeueMatching(body: RequeueBody): Promise<{ requeued: number }> {
    const filter = { ...filterOf(body, await this.sources.sourceIdOf(body.source)), status: body.status };
    let requeued = 0;
    let after = 0n;
    if (filter.status === 'queued') {
      // Only those whose job Redis lost or finished without them: a live job forwards its own.
      for (;;) {
        const queued = await this.events.findQueued(filter, after, REQUEUE_BATCH);
        if (queued.length === 0) break;
        requeued += await this.restoreStranded(queued);
        after = queued[queued.length - 1].id;
      }
      return { requeued };
    }
    for (;;) {
      const ids = await this.events.takeForRequeue(filter, REQUEUE_BATCH, after);
      if (ids.length === 0) break;
      // Rows are `received` now: should Redis fail here, the recovery loop queues them.
      requeued += await this.queue(ids);
      after = ids[ids.length - 1];
    }
    return { requeued };
  }

  /**
   * The events are `received` already: if Redis cannot take their job now, the recovery loop
   * queues them once it can. The answer says so, because requeueing them again would replay a
   * forced event twice.
   */
  private queue(ids: bigint[]): Promise<number> {
    return whileRedisAnswers(
      () => this.enqueuer.queueReceived(ids, 'requeue'),
      'the event(s) are stored as received and the recovery loop queues them once Redis is back; do not requeue them again',
    );
  }

  private restoreStranded(queued: Array<{ id: bigint; jobId: string }>): Promise<number> {
    return whileRedisAnswers(
      () => this.enqueuer.restoreLostJobs(queued),
      "whether the events' jobs still exist cannot be told; retry once it is back",
    );
  }
}

/** `work`, with Redis being unreachable answered 503 and what that means for the events. */
async function whileRedisAnswers<T>(work: () => Promise<T>, meaning: string): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!isRedisUnavailable(error)) throw error;
    throw new ServiceUnavailableException(`Redis is unavailable: ${meaning} (${(error as Error).message})`);
  }
}
