import { Test } from '@nestjs/testing';
import { UnrecoverableError } from 'bullmq';
import { AppConfig, configFromEnvironment } from '@app/config';
import { EventForForwarding, EventStatus, ForwardingEventRepository } from '@app/database';
import { parseMailjetBody, toEventRecord } from '@app/mailjet';
import { SegmentClient, SegmentDeliveryError, SegmentTrackCall, segmentMessageIdOf, TrackCallFactory } from '@app/segment';
import { MAILJET_SAMPLES } from '../../../../test/fixtures/mailjet-samples';
import {
  Attempt,
  DeliveredButNotRecordedError,
  EventNotFoundError,
  SegmentForwardingService,
} from './segment-forwarding.service';

// Beyond 2^53: an id that went through a JS number on its way would come out as another id.
const EVENT_ID = 9007199254740993n;
const EARLIER_EVENT_ID = 9007199254740991n;

/** The stored `sent` sample as the repository's claim answers it: queued, its dedupe key owned by itself. */
function storedSentEvent(fields: Partial<EventForForwarding> = {}): EventForForwarding {
  const payload = MAILJET_SAMPLES.sent;
  const record = toEventRecord(parseMailjetBody(payload)[0]);
  return {
    id: EVENT_ID,
    payload,
    eventType: record.eventType,
    status: EventStatus.queued,
    email: record.email,
    messageId: record.messageId,
    eventTime: record.time,
    dedupeKey: record.dedupeKey,
    attempts: 0,
    dedupeOwner: EVENT_ID,
    storedUserId: 'user-42',
    ...fields,
  };
}

const SENT_DEDUPE_KEY = storedSentEvent().dedupeKey!;
const SENT_WITHOUT_EMAIL = MAILJET_SAMPLES.sent.replace('"email": "api@mailjet.com",', '');

/** The worker's statements against a map of events: what it claims, and what it writes down. */
class InMemoryForwardingEvents implements Pick<ForwardingEventRepository, keyof ForwardingEventRepository> {
  readonly events = new Map<bigint, EventForForwarding>();
  readonly forwarded: Array<{ id: bigint; segmentMessageId: string }> = [];
  readonly duplicates: Array<{ id: bigint; ownerId: bigint }> = [];
  readonly failedAttempts: Array<{ id: bigint; reason: string; final: boolean }> = [];
  /** Set to make markForwarded fail, as PostgreSQL going away right after a delivery would. */
  markForwardedError: Error | undefined;

  async claim(id: bigint): Promise<EventForForwarding | null> {
    const event = this.events.get(id);
    return event ? { ...event } : null;
  }

  async markForwarded(id: bigint, segmentMessageId: string): Promise<void> {
    if (this.markForwardedError) throw this.markForwardedError;
    this.forwarded.push({ id, segmentMessageId });
    this.update(id, { status: EventStatus.forwarded });
  }

  async markDuplicate(id: bigint, ownerId: bigint): Promise<void> {
    this.duplicates.push({ id, ownerId });
    this.update(id, { status: EventStatus.duplicate });
  }

  async recordFailedAttempt(id: bigint, reason: string, final: boolean): Promise<void> {
    this.failedAttempts.push({ id, reason, final });
    this.update(id, { status: final ? EventStatus.failed : EventStatus.queued });
  }

  private update(id: bigint, fields: Partial<EventForForwarding>): void {
    const event = this.events.get(id);
    if (event) this.events.set(id, { ...event, ...fields });
  }
}

/** A Segment that records the calls it accepts, or refuses them with `refusal`. */
class RecordingSegment implements Pick<SegmentClient, 'track'> {
  readonly sent: SegmentTrackCall[] = [];
  refusal: Error | undefined;

  async track(call: SegmentTrackCall): Promise<void> {
    if (this.refusal) throw this.refusal;
    this.sent.push(call);
  }
}

describe('SegmentForwardingService', () => {
  let events: InMemoryForwardingEvents;
  let segment: RecordingSegment;
  let service: SegmentForwardingService;
  const firstOfTen: Attempt = { number: 1, max: 10 };

  beforeEach(async () => {
    events = new InMemoryForwardingEvents();
    segment = new RecordingSegment();
    const moduleRef = await Test.createTestingModule({
      providers: [
        SegmentForwardingService,
        ForwardingEventRepository,
        SegmentClient,
        TrackCallFactory,
        { provide: AppConfig, useValue: configFromEnvironment([], { USER_ID_PAYLOAD_KEY: 'userId' }) },
      ],
    })
      .overrideProvider(ForwardingEventRepository)
      .useValue(events)
      .overrideProvider(SegmentClient)
      .useValue(segment)
      .compile();
    service = moduleRef.get(SegmentForwardingService);
  });

  it('sends the event it owns the dedupe key of, mapped, and records it forwarded with the Segment messageId', async () => {
    events.events.set(EVENT_ID, storedSentEvent());

    await expect(service.forward(EVENT_ID, firstOfTen)).resolves.toBe('forwarded');

    expect(segment.sent).toHaveLength(1);
    expect(segment.sent[0]).toMatchObject({
      event: 'Email Delivered',
      userId: 'user-42',
      messageId: segmentMessageIdOf(SENT_DEDUPE_KEY),
      properties: { email_id: '19421777835146490' },
    });
    expect(events.forwarded).toEqual([{ id: EVENT_ID, segmentMessageId: segmentMessageIdOf(SENT_DEDUPE_KEY) }]);
    expect(events.failedAttempts).toEqual([]);
  });

  it('sends once when the same job runs again after its success', async () => {
    events.events.set(EVENT_ID, storedSentEvent());

    await service.forward(EVENT_ID, firstOfTen);
    await expect(service.forward(EVENT_ID, { number: 2, max: 10 })).resolves.toBe('already-done');

    expect(segment.sent).toHaveLength(1);
    expect(events.forwarded).toHaveLength(1);
  });

  it('marks a duplicate, sending nothing, when another event owns the dedupe key', async () => {
    events.events.set(EVENT_ID, storedSentEvent({ dedupeOwner: EARLIER_EVENT_ID }));

    await expect(service.forward(EVENT_ID, firstOfTen)).resolves.toBe('duplicate');

    expect(events.duplicates).toEqual([{ id: EVENT_ID, ownerId: EARLIER_EVENT_ID }]);
    expect(segment.sent).toEqual([]);
    expect(events.forwarded).toEqual([]);
  });

  it.each([EventStatus.forwarded, EventStatus.duplicate, EventStatus.invalid])(
    'leaves a %s event alone: nothing sent, nothing written',
    async (status) => {
      events.events.set(EVENT_ID, storedSentEvent({ status, dedupeOwner: null }));

      await expect(service.forward(EVENT_ID, firstOfTen)).resolves.toBe('already-done');

      expect(segment.sent).toEqual([]);
      expect([...events.forwarded, ...events.duplicates, ...events.failedAttempts]).toEqual([]);
    },
  );

  it('forwards a failed event that was requeued: failed is not a finished status', async () => {
    events.events.set(EVENT_ID, storedSentEvent({ status: EventStatus.failed, attempts: 10 }));

    await expect(service.forward(EVENT_ID, firstOfTen)).resolves.toBe('forwarded');
    expect(segment.sent).toHaveLength(1);
  });

  it('fails for good, sending nothing, an event without a dedupe key', async () => {
    events.events.set(EVENT_ID, storedSentEvent({ dedupeKey: null, dedupeOwner: null }));

    const failure = service.forward(EVENT_ID, firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failure).rejects.toThrow(`event ${EVENT_ID} has no dedupe key`);
    expect(segment.sent).toEqual([]);
    expect(events.forwarded).toEqual([]);
    expect(events.failedAttempts).toEqual([{ id: EVENT_ID, reason: `event ${EVENT_ID} has no dedupe key`, final: true }]);
  });

  it('records as forwarded, without sending again, an event that an earlier attempt delivered', async () => {
    const deliveredMessageId = segmentMessageIdOf(SENT_DEDUPE_KEY);
    events.events.set(EVENT_ID, storedSentEvent());

    await expect(service.forward(EVENT_ID, { number: 2, max: 10, deliveredMessageId })).resolves.toBe('forwarded');

    expect(segment.sent).toEqual([]);
    expect(events.forwarded).toEqual([{ id: EVENT_ID, segmentMessageId: deliveredMessageId }]);
  });

  it('fails at once, with the reason on the row, an event that Segment refuses for good', async () => {
    events.events.set(EVENT_ID, storedSentEvent());
    segment.refusal = new SegmentDeliveryError('Segment answered 400: invalid event', false, 400);

    const failure = service.forward(EVENT_ID, firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failure).rejects.toThrow('Segment answered 400: invalid event');
    expect(events.failedAttempts).toEqual([{ id: EVENT_ID, reason: 'Segment answered 400: invalid event', final: true }]);
    expect(events.forwarded).toEqual([]);
  });

  it.each([
    ['an attempt before the last', { number: 3, max: 10 }, false],
    ['the last attempt', { number: 10, max: 10 }, true],
  ])('records a retryable failure on %s (final: %s) and rethrows the same error', async (_, attempt, final) => {
    events.events.set(EVENT_ID, storedSentEvent());
    const unavailable = new SegmentDeliveryError('Segment answered 503', true, 503);
    segment.refusal = unavailable;

    const failure = service.forward(EVENT_ID, attempt);

    await expect(failure).rejects.toBe(unavailable);
    expect(events.failedAttempts).toEqual([{ id: EVENT_ID, reason: 'Segment answered 503', final }]);
    expect(events.events.get(EVENT_ID)?.status).toBe(final ? EventStatus.failed : EventStatus.queued);
  });

  it('takes an error that is not a SegmentDeliveryError as retryable', async () => {
    events.events.set(EVENT_ID, storedSentEvent());
    const timeout = new Error('socket hang up');
    segment.refusal = timeout;

    await expect(service.forward(EVENT_ID, firstOfTen)).rejects.toBe(timeout);
    expect(events.failedAttempts).toEqual([{ id: EVENT_ID, reason: 'socket hang up', final: false }]);
  });

  it.each([
    ['a payload that is not JSON', { payload: '{"event": "sent", ' }, /cannot be read/],
    ['a payload without its email', { payload: SENT_WITHOUT_EMAIL }, /not a valid Mailjet event/],
    ['a type Mailjet does not send', { eventType: 'delivered' }, /not a valid Mailjet event/],
  ])('fails for good, with the reason on the row, %s', async (_, fields, reason) => {
    events.events.set(EVENT_ID, storedSentEvent(fields));

    const failure = service.forward(EVENT_ID, firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failure).rejects.toThrow(reason);
    expect(events.failedAttempts).toEqual([{ id: EVENT_ID, reason: expect.stringMatching(reason), final: true }]);
    expect(segment.sent).toEqual([]);
  });

  it('says which Segment messageId was delivered when recording it fails', async () => {
    events.events.set(EVENT_ID, storedSentEvent());
    const lost = Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
    events.markForwardedError = lost;

    const failure = service.forward(EVENT_ID, firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(DeliveredButNotRecordedError);
    await expect(failure).rejects.toMatchObject({ segmentMessageId: segmentMessageIdOf(SENT_DEDUPE_KEY), cause: lost });
    expect(segment.sent).toHaveLength(1);
    expect(events.failedAttempts).toEqual([]);
  });

  it('throws EventNotFoundError for an event that is not (yet) in the database', async () => {
    const failure = service.forward(EVENT_ID, firstOfTen);

    await expect(failure).rejects.toBeInstanceOf(EventNotFoundError);
    await expect(failure).rejects.toMatchObject({ eventId: EVENT_ID });
    expect(segment.sent).toEqual([]);
  });
});
