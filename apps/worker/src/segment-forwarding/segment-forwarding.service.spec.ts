import { Test } from '@nestjs/testing';
import { UnrecoverableError } from 'bullmq';
import { AppConfig, configFromEnvironment } from '@app/config';
import { EventForForwarding, EventOutcome, EventStatus, ForwardingEventRepository } from '@app/database';
import { MailjetEventType, parseMailjetBody, toEventRecord } from '@app/mailjet';
import { ForwardEventsJob } from '@app/queue';
import { DeliveryResult, SegmentClient, SegmentDeliveryError, SegmentTrackCall, segmentMessageIdOf, TrackCallFactory } from '@app/segment';
import { BridgeMetrics } from '@app/metrics';
import { KnownSource, SourceDirectory } from '@app/sources';
import { MAILJET_SAMPLES } from '../../../../test/fixtures/mailjet-samples';
import { DestinationGate } from './destination-gate';
import { Destination, Destinations } from './destinations.service';
import { Enrichment } from './enrichment.service';
import {
  Attempt,
  DeliveredButNotRecordedError,
  EventsNotFoundError,
  RetryableEventsError,
  SegmentForwardingService,
} from './segment-forwarding.service';

// Beyond 2^53: an id that went through a JS number on its way would come out as another id.
const FIRST_ID = 9007199254740993n;
const EARLIER_ID = 9007199254740991n;
const JOB_ID = 'ingest-41-0';

/** A stored sample as the repository's claim answers it: in this job, queued, its dedupe key owned by itself. */
function stored(type: MailjetEventType, id: bigint, fields: Partial<EventForForwarding> = {}): EventForForwarding {
  const payload = MAILJET_SAMPLES[type];
  const record = toEventRecord(parseMailjetBody(payload)[0]);
  return {
    id,
    payload,
    eventType: record.eventType,
    status: EventStatus.queued,
    email: record.email,
    messageId: record.messageId,
    eventTime: record.time,
    dedupeKey: record.dedupeKey,
    attempts: 0,
    sourceId: 1,
    inThisJob: true,
    parked: false,
    sourceDeleted: false,
    receivedAt: 1700000000,
    dedupeOwner: id,
    storedUserId: null,
    ...fields,
  };
}

const messageIdOf = (event: EventForForwarding) => segmentMessageIdOf(event.dedupeKey!);
const SENT_WITHOUT_EMAIL = MAILJET_SAMPLES.sent.replace('"email": "api@mailjet.com",', '');

/** The worker's two statements against a map of rows: what it claims, and what it writes down. */
class InMemoryForwardingEvents implements Pick<ForwardingEventRepository, 'claim' | 'recordOutcomes'> {
  readonly rows = new Map<bigint, EventForForwarding>();
  readonly claims: Array<{ jobId: string; ids: bigint[] }> = [];
  readonly recordCalls: Array<{ jobId: string; outcomes: EventOutcome[] }> = [];
  /** Set to make recordOutcomes fail, as PostgreSQL going away right after the deliveries would. */
  recordError: Error | undefined;

  add(...events: EventForForwarding[]): bigint[] {
    for (const event of events) this.rows.set(event.id, event);
    return events.map((event) => event.id);
  }

  async claim(jobId: string, ids: readonly bigint[]): Promise<EventForForwarding[]> {
    this.claims.push({ jobId, ids: [...ids] });
    return ids.flatMap((id) => (this.rows.has(id) ? [{ ...this.rows.get(id)! }] : []));
  }

  async recordOutcomes(jobId: string, outcomes: readonly EventOutcome[]): Promise<void> {
    this.recordCalls.push({ jobId, outcomes: [...outcomes] });
    if (this.recordError) throw this.recordError;
    for (const outcome of outcomes) this.rows.set(outcome.id, { ...this.rows.get(outcome.id)!, status: outcome.status });
  }

  /** Every outcome written, in id order (the order of the statement's list says nothing). */
  get outcomes(): EventOutcome[] {
    return this.recordCalls.flatMap((call) => call.outcomes).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

/** A Segment that accepts every call but those given a refusal, and records what each deliver carried. */
class ScriptedSegment implements Pick<SegmentClient, 'deliver'> {
  readonly delivers: SegmentTrackCall[][] = [];
  /** Per Segment messageId, why that call is not accepted. */
  readonly refusals = new Map<string, SegmentDeliveryError>();

  async deliver(calls: readonly SegmentTrackCall[]): Promise<DeliveryResult[]> {
    this.delivers.push([...calls]);
    return calls.map((call) => {
      const error = this.refusals.get(call.messageId);
      return error ? { accepted: false, error } : { accepted: true };
    });
  }

  /** The messageIds of every call sent, accepted or not. */
  get sent(): string[] {
    return this.delivers.flat().map((call) => call.messageId);
  }
}

/** Every source's events go to the scripted Segment, through an open gate. */
class OneDestination implements Pick<Destinations, 'of'> {
  private readonly gate = new DestinationGate(50, 1000);

  constructor(private readonly segment: ScriptedSegment) {}

  async of(sourceId: number): Promise<Destination> {
    const source = { id: sourceId, slug: 'default', deleted: false } as KnownSource;
    return { source, client: this.segment, gate: this.gate };
  }
}

const jobOf = (eventIds: bigint[], delivered: Array<[bigint, string]> = []): ForwardEventsJob => ({
  eventIds,
  delivered: new Map(delivered),
});
const forwarded = (event: EventForForwarding): EventOutcome => ({
  id: event.id,
  status: EventStatus.forwarded,
  segmentMessageId: messageIdOf(event),
});

describe('SegmentForwardingService', () => {
  let events: InMemoryForwardingEvents;
  let segment: ScriptedSegment;
  let service: SegmentForwardingService;
  const firstOfTen: Attempt = { number: 1, max: 10 };

  beforeEach(async () => {
    events = new InMemoryForwardingEvents();
    segment = new ScriptedSegment();
    const moduleRef = await Test.createTestingModule({
      providers: [
        SegmentForwardingService,
        ForwardingEventRepository,
        Destinations,
        { provide: Enrichment, useValue: { enrich: async () => undefined } },
        { provide: SourceDirectory, useValue: { byId: (id: number) => ({ id, slug: id === 1 ? 'default' : `source-${id}` }) } },
        BridgeMetrics,
        TrackCallFactory,
        { provide: AppConfig, useValue: configFromEnvironment([], { USER_ID_PAYLOAD_KEY: 'userId' }) },
      ],
    })
      .overrideProvider(ForwardingEventRepository)
      .useValue(events)
      .overrideProvider(Destinations)
      .useValue(new OneDestination(segment))
      .compile();
    service = moduleRef.get(SegmentForwardingService);
  });

  it('forwards the events it owns, marks duplicates, skips those not its own, and writes all outcomes at once', async () => {
    const sent = stored('sent', FIRST_ID, { storedUserId: 'user-42' });
    const open = stored('open', FIRST_ID + 1n, { dedupeOwner: EARLIER_ID });
    const movedToAnotherJob = stored('click', FIRST_ID + 2n, { inThisJob: false, dedupeOwner: null });
    const alreadyForwarded = stored('bounce', FIRST_ID + 3n, { status: EventStatus.forwarded, dedupeOwner: null });
    const unsub = stored('unsub', FIRST_ID + 4n);
    const ids = events.add(sent, open, movedToAnotherJob, alreadyForwarded, unsub);

    await expect(service.forward(JOB_ID, jobOf(ids), firstOfTen)).resolves.toEqual({ forwarded: 2, duplicate: 1, skipped: 2, parked: 0 });

    expect(events.claims).toEqual([{ jobId: JOB_ID, ids }]);
    // One deliver for the job, carrying the mapped calls of the events to forward, and only those.
    expect(segment.delivers).toHaveLength(1);
    expect(segment.delivers[0]).toEqual([
      expect.objectContaining({
        event: 'Email Delivered',
        userId: 'user-42',
        messageId: messageIdOf(sent),
        properties: expect.objectContaining({ email_id: '19421777835146490' }),
      }),
      expect.objectContaining({ event: 'Email Unsubscribed', anonymousId: 'api@mailjet.com', messageId: messageIdOf(unsub) }),
    ]);
    expect(events.recordCalls).toHaveLength(1);
    expect(events.recordCalls[0].jobId).toBe(JOB_ID);
    expect(events.outcomes).toEqual([
      forwarded(sent),
      { id: open.id, status: EventStatus.duplicate, duplicateOf: EARLIER_ID },
      forwarded(unsub),
    ]);
  });

  it.each([EventStatus.received, EventStatus.forwarded, EventStatus.duplicate, EventStatus.failed, EventStatus.invalid])(
    'leaves a %s event alone: nothing sent, nothing written for it',
    async (status) => {
      const other = stored('sent', FIRST_ID, { status, dedupeOwner: null });
      const open = stored('open', FIRST_ID + 1n);
      const ids = events.add(other, open);

      await expect(service.forward(JOB_ID, jobOf(ids), firstOfTen)).resolves.toEqual({ forwarded: 1, duplicate: 0, skipped: 1, parked: 0 });

      expect(segment.sent).toEqual([messageIdOf(open)]);
      expect(events.outcomes).toEqual([forwarded(open)]);
    },
  );

  it('sends nothing and writes nothing when every event of the job was moved to another job', async () => {
    const moved = { inThisJob: false, dedupeOwner: null };
    const ids = events.add(stored('sent', FIRST_ID, moved), stored('open', FIRST_ID + 1n, moved));

    await expect(service.forward(JOB_ID, jobOf(ids), firstOfTen)).resolves.toEqual({ forwarded: 0, duplicate: 0, skipped: 2, parked: 0 });

    expect(segment.sent).toEqual([]);
    expect(events.outcomes).toEqual([]);
  });

  it.each([
    ['a payload that is not JSON', { payload: '{"event": "sent", ' }, /cannot be read/],
    ['a payload without its email', { payload: SENT_WITHOUT_EMAIL }, /not a valid Mailjet event/],
    ['a type Mailjet does not send', { eventType: 'delivered' }, /not a valid Mailjet event/],
    ['no dedupe key', { dedupeKey: null, dedupeOwner: null }, new RegExp(`event ${FIRST_ID} has no dedupe key`)],
  ])('fails for good, unsent and with the reason on its row, an event with %s, and forwards the others', async (_, fields, reason) => {
    const bad = stored('sent', FIRST_ID, fields);
    const open = stored('open', FIRST_ID + 1n);
    const ids = events.add(bad, open);

    const failure = service.forward(JOB_ID, jobOf(ids), firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failure).rejects.toThrow(/^1 of 2 event\(s\) failed: /);
    await expect(failure).rejects.toThrow(reason);
    expect(segment.sent).toEqual([messageIdOf(open)]);
    expect(events.recordCalls).toHaveLength(1);
    expect(events.outcomes).toEqual([
      { id: bad.id, status: EventStatus.failed, reason: expect.stringMatching(reason) },
      forwarded(open),
    ]);
  });

  it('fails the event Segment refuses for good, records the others forwarded, then fails the job', async () => {
    const [sent, open, click] = [stored('sent', FIRST_ID), stored('open', FIRST_ID + 1n), stored('click', FIRST_ID + 2n)];
    const ids = events.add(sent, open, click);
    segment.refusals.set(messageIdOf(open), new SegmentDeliveryError('Segment answered 400: invalid event', false, 400, undefined, 1));

    const failure = service.forward(JOB_ID, jobOf(ids), firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failure).rejects.toThrow('1 of 3 event(s) failed: Segment answered 400: invalid event');
    expect(events.recordCalls).toHaveLength(1);
    expect(events.outcomes).toEqual([
      forwarded(sent),
      { id: open.id, status: EventStatus.failed, reason: 'Segment answered 400: invalid event' },
      forwarded(click),
    ]);
  });

  it('keeps the events of a failed attempt queued with their reasons, and asks for the longest Retry-After', async () => {
    const [sent, open, click, unsub] = (['sent', 'open', 'click', 'unsub'] as const).map((type, i) => stored(type, FIRST_ID + BigInt(i)));
    const ids = events.add(sent, open, click, unsub);
    // The longest wait is neither the first nor the last refusal.
    segment.refusals.set(messageIdOf(sent), new SegmentDeliveryError('Segment answered 429: slow down', true, 429, 2000));
    segment.refusals.set(messageIdOf(open), new SegmentDeliveryError('Segment answered 429: slower', true, 429, 5000));
    segment.refusals.set(messageIdOf(unsub), new SegmentDeliveryError('Segment answered 503', true, 503));

    const failure = service.forward(JOB_ID, jobOf(ids), { number: 3, max: 10 });

    await expect(failure).rejects.toBeInstanceOf(RetryableEventsError);
    await expect(failure).rejects.toMatchObject({ retryable: true, status: 429, retryAfterMs: 5000 });
    await expect(failure).rejects.toThrow(/^3 event\(s\) not delivered: Segment answered 429: slower$/);
    expect(events.recordCalls).toHaveLength(1);
    expect(events.outcomes).toEqual([
      { id: sent.id, status: EventStatus.queued, reason: 'Segment answered 429: slow down' },
      { id: open.id, status: EventStatus.queued, reason: 'Segment answered 429: slower' },
      forwarded(click),
      { id: unsub.id, status: EventStatus.queued, reason: 'Segment answered 503' },
    ]);
  });

  it('sends, on the retry of a job, only its events that are not forwarded yet', async () => {
    const [sent, open] = [stored('sent', FIRST_ID), stored('open', FIRST_ID + 1n)];
    const ids = events.add(sent, open);
    segment.refusals.set(messageIdOf(open), new SegmentDeliveryError('Segment answered 503', true, 503));
    await expect(service.forward(JOB_ID, jobOf(ids), { number: 1, max: 10 })).rejects.toBeInstanceOf(RetryableEventsError);
    segment.refusals.clear();

    await expect(service.forward(JOB_ID, jobOf(ids), { number: 2, max: 10 })).resolves.toEqual({ forwarded: 1, duplicate: 0, skipped: 1, parked: 0 });

    expect(segment.delivers.map((calls) => calls.map((call) => call.messageId))).toEqual([
      [messageIdOf(sent), messageIdOf(open)],
      [messageIdOf(open)],
    ]);
    expect(events.recordCalls[1].outcomes).toEqual([forwarded(open)]);
  });

  it('retries a job with events that may yet go through, even when another of its events was refused for good', async () => {
    const [sent, open] = [stored('sent', FIRST_ID), stored('open', FIRST_ID + 1n)];
    const ids = events.add(sent, open);
    segment.refusals.set(messageIdOf(sent), new SegmentDeliveryError('Segment answered 400: invalid event', false, 400));
    segment.refusals.set(messageIdOf(open), new SegmentDeliveryError('Segment answered 503', true, 503));

    const failure = service.forward(JOB_ID, jobOf(ids), firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(RetryableEventsError);
    await expect(failure).rejects.toThrow(/^1 event\(s\) not delivered/);
    expect(events.outcomes).toEqual([
      { id: sent.id, status: EventStatus.failed, reason: 'Segment answered 400: invalid event' },
      { id: open.id, status: EventStatus.queued, reason: 'Segment answered 503' },
    ]);
  });

  it('fails for good, on the last attempt, the events that Segment could not take', async () => {
    const [sent, open] = [stored('sent', FIRST_ID), stored('open', FIRST_ID + 1n)];
    const ids = events.add(sent, open);
    segment.refusals.set(messageIdOf(open), new SegmentDeliveryError('Segment answered 503', true, 503));

    await expect(service.forward(JOB_ID, jobOf(ids), { number: 10, max: 10 })).rejects.toBeInstanceOf(RetryableEventsError);

    expect(events.outcomes).toEqual([forwarded(sent), { id: open.id, status: EventStatus.failed, reason: 'Segment answered 503' }]);
  });

  it('records as forwarded, without sending them again, the events an earlier attempt delivered', async () => {
    const [sent, open] = [stored('sent', FIRST_ID), stored('open', FIRST_ID + 1n)];
    // Its earlier record did reach PostgreSQL after all: nothing to write.
    const recordedMeanwhile = stored('click', FIRST_ID + 2n, { status: EventStatus.forwarded, dedupeOwner: null });
    const ids = events.add(sent, open, recordedMeanwhile);
    const job = jobOf(ids, [[sent.id, messageIdOf(sent)], [recordedMeanwhile.id, messageIdOf(recordedMeanwhile)]]);

    await expect(service.forward(JOB_ID, job, { number: 2, max: 10 })).resolves.toEqual({ forwarded: 2, duplicate: 0, skipped: 1, parked: 0 });

    expect(segment.sent).toEqual([messageIdOf(open)]);
    expect(events.outcomes).toEqual([forwarded(sent), forwarded(open)]);
  });

  it('records a delivery it remembers even when a requeue moved the event to another job meanwhile', async () => {
    const moved = stored('open', FIRST_ID, { status: EventStatus.received, inThisJob: false, dedupeOwner: null });
    const ids = events.add(moved);

    await service.forward(JOB_ID, jobOf(ids, [[moved.id, messageIdOf(moved)]]), { number: 2, max: 10 });

    // Segment has it: the requeue's job will find it forwarded instead of sending it again.
    expect(segment.sent).toEqual([]);
    expect(events.outcomes).toEqual([forwarded(moved)]);
  });

  it('says exactly which events Segment accepted when recording the outcomes fails', async () => {
    const accepted = [stored('sent', FIRST_ID), stored('click', FIRST_ID + 3n)];
    const refused = stored('open', FIRST_ID + 1n);
    const duplicate = stored('bounce', FIRST_ID + 2n, { dedupeOwner: EARLIER_ID });
    const deliveredEarlier = stored('unsub', FIRST_ID + 4n);
    const ids = events.add(...accepted, refused, duplicate, deliveredEarlier);
    segment.refusals.set(messageIdOf(refused), new SegmentDeliveryError('Segment answered 503', true, 503));
    const lost = Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
    events.recordError = lost;

    const failure = service.forward(JOB_ID, jobOf(ids, [[deliveredEarlier.id, messageIdOf(deliveredEarlier)]]), firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(DeliveredButNotRecordedError);
    const error = (await failure.catch((e: unknown) => e)) as DeliveredButNotRecordedError;
    expect(error.delivered).toEqual(new Map(accepted.map((event) => [event.id, messageIdOf(event)])));
    expect(error.cause).toBe(lost);
  });

  it('rethrows the database error itself when recording fails and nothing was delivered in this attempt', async () => {
    const deliveredEarlier = stored('sent', FIRST_ID);
    const duplicate = stored('open', FIRST_ID + 1n, { dedupeOwner: EARLIER_ID });
    const ids = events.add(deliveredEarlier, duplicate);
    const lost = Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
    events.recordError = lost;

    const job = jobOf(ids, [[deliveredEarlier.id, messageIdOf(deliveredEarlier)]]);

    await expect(service.forward(JOB_ID, job, firstOfTen)).rejects.toBe(lost);
    expect(segment.sent).toEqual([]);
  });

  it('throws EventsNotFoundError, sending and writing nothing, when none of the events is in the database', async () => {
    const failure = service.forward(JOB_ID, jobOf([FIRST_ID, FIRST_ID + 1n]), firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(EventsNotFoundError);
    await expect(failure).rejects.toMatchObject({ jobId: JOB_ID });
    expect(events.claims).toEqual([{ jobId: JOB_ID, ids: [FIRST_ID, FIRST_ID + 1n] }]);
    expect(segment.delivers).toEqual([]);
    expect(events.recordCalls).toEqual([]);
  });
});
