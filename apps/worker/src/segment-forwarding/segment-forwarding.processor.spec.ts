import { Test } from '@nestjs/testing';
import { DelayedError, Job, UnrecoverableError } from 'bullmq';
import { AppConfig, configFromEnvironment } from '@app/config';
import { ForwardEventJobData } from '@app/queue';
import { SegmentDeliveryError, segmentMessageIdOf } from '@app/segment';
import { SegmentForwardingProcessor } from './segment-forwarding.processor';
import {
  Attempt,
  DeliveredButNotRecordedError,
  EventNotFoundError,
  ForwardOutcome,
  SegmentForwardingService,
} from './segment-forwarding.service';

// Beyond 2^53: the processor must hand the service the exact id.
const EVENT_ID = 9007199254740993n;
const DELIVERED_MESSAGE_ID = segmentMessageIdOf('19421777835146490:sent:1433333949');
const LOCK_TOKEN = 'lock-token';

/** The service as the processor sees it: answers each forward with the next scripted outcome or error. */
class ScriptedForwarding implements Pick<SegmentForwardingService, 'forward'> {
  readonly calls: Array<{ eventId: bigint; attempt: Attempt }> = [];
  private readonly script: Array<ForwardOutcome | Error> = [];

  answer(...results: Array<ForwardOutcome | Error>): void {
    this.script.push(...results);
  }

  async forward(eventId: bigint, attempt: Attempt): Promise<ForwardOutcome> {
    this.calls.push({ eventId, attempt });
    const result = this.script.shift();
    if (result === undefined) throw new Error('forward called more often than scripted');
    if (result instanceof Error) throw result;
    return result;
  }
}

/** The part of a BullMQ job the processor uses, recording what it asks of the queue. */
function fakeJob(fields: { data?: unknown; attemptsMade?: number; attempts?: number; ageMs?: number } = {}) {
  const job = {
    id: '1',
    data: 'data' in fields ? fields.data : { eventId: EVENT_ID.toString() },
    attemptsMade: fields.attemptsMade ?? 0,
    opts: { attempts: 'attempts' in fields ? fields.attempts : 10 },
    timestamp: Date.now() - (fields.ageMs ?? 0),
    dataUpdates: [] as unknown[],
    delays: [] as Array<{ until: number; token?: string }>,
    /** The order of the job's calls, to check that the delivery is remembered before the job is delayed. */
    steps: [] as string[],
    async updateData(data: unknown): Promise<void> {
      job.steps.push('updateData');
      job.dataUpdates.push(data);
      job.data = data;
    },
    async moveToDelayed(until: number, token?: string): Promise<void> {
      job.steps.push('moveToDelayed');
      job.delays.push({ until, token });
    },
  };
  return job;
}
type FakeJob = ReturnType<typeof fakeJob>;

/** An error as pg or Node.js raises it, with its SQLSTATE or socket code. */
const withCode = (error: Error, code: string) => Object.assign(error, { code });

describe('SegmentForwardingProcessor', () => {
  let forwarding: ScriptedForwarding;
  let processor: SegmentForwardingProcessor;

  // The testing module builds the processor with its real dependencies' tokens; without BullModule
  // no explorer turns @Processor into a Worker, so no Redis is needed, and `process` is called as
  // BullMQ would call it.
  beforeEach(async () => {
    forwarding = new ScriptedForwarding();
    const moduleRef = await Test.createTestingModule({
      providers: [
        SegmentForwardingProcessor,
        SegmentForwardingService,
        { provide: AppConfig, useValue: configFromEnvironment([]) },
      ],
    })
      .overrideProvider(SegmentForwardingService)
      .useValue(forwarding)
      .compile();
    processor = moduleRef.get(SegmentForwardingProcessor);
  });

  const runJob = (job: FakeJob) => processor.process(job as unknown as Job<ForwardEventJobData>, LOCK_TOKEN);

  /** Runs the job and expects it handed back to the delayed set (1 to 2 s away) without spending an attempt. */
  async function expectDelayedWithoutAttempt(job: FakeJob): Promise<void> {
    const before = Date.now();
    await expect(runJob(job)).rejects.toBeInstanceOf(DelayedError);
    expect(job.delays).toHaveLength(1);
    expect(job.delays[0].token).toBe(LOCK_TOKEN);
    expect(job.delays[0].until).toBeGreaterThanOrEqual(before + 1000);
    expect(job.delays[0].until).toBeLessThanOrEqual(Date.now() + 2000);
  }

  it('returns the outcome of a forward, telling the service its exact event id and which attempt this is', async () => {
    forwarding.answer('forwarded');

    await expect(runJob(fakeJob({ attemptsMade: 2, attempts: 10 }))).resolves.toBe('forwarded');

    expect(forwarding.calls).toEqual([{ eventId: EVENT_ID, attempt: { number: 3, max: 10, deliveredMessageId: undefined } }]);
  });

  it('takes a job without an attempts option as its only attempt', async () => {
    forwarding.answer('duplicate');

    await expect(runJob(fakeJob({ attempts: undefined }))).resolves.toBe('duplicate');
    expect(forwarding.calls[0].attempt).toMatchObject({ number: 1, max: 1 });
  });

  it.each([
    ['no event id', {}],
    ['a numeric event id', { eventId: 42 }],
    ['event id 0', { eventId: '0' }],
    ['an event id that is not decimal', { eventId: '12abc' }],
    ['a delivered messageId of something else', { eventId: '1', deliveredMessageId: 'not-ours' }],
    ['no data at all', null],
  ])('fails for good, without forwarding, a job with %s', async (_, data) => {
    const failure = runJob(fakeJob({ data }));

    await expect(failure).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failure).rejects.toThrow(/invalid job data/);
    expect(forwarding.calls).toEqual([]);
  });

  it.each([
    ['a refused connection', withCode(new Error('connect ECONNREFUSED 127.0.0.1:5432'), 'ECONNREFUSED')],
    ['a connection dropped mid-query', new Error('Connection terminated unexpectedly')],
    ['a PostgreSQL shutting down', withCode(new Error('terminating connection due to administrator command'), '57P01')],
  ])('hands the job back, delayed, without spending an attempt, on %s', async (_, outage) => {
    forwarding.answer(outage);
    const job = fakeJob({ attemptsMade: 4 });

    await expectDelayedWithoutAttempt(job);
    expect(job.dataUpdates).toEqual([]);
  });

  it('spends an attempt when Segment itself cannot be reached, although its error says ECONNREFUSED too', async () => {
    const unreachable = new SegmentDeliveryError('Segment unreachable: connect ECONNREFUSED 127.0.0.1:443', true);
    forwarding.answer(unreachable);
    const job = fakeJob();

    await expect(runJob(job)).rejects.toBe(unreachable);
    expect(job.delays).toEqual([]);
  });

  it.each([
    ['a query error', withCode(new Error('column "nope" does not exist'), '42703')],
    ['an UnrecoverableError of the service', new UnrecoverableError('Segment answered 400')],
  ])('rethrows %s as it is, for BullMQ to retry or fail', async (_, error) => {
    forwarding.answer(error);
    const job = fakeJob();

    await expect(runJob(job)).rejects.toBe(error);
    expect(job.delays).toEqual([]);
  });

  it('waits, without spending an attempt, for an event whose transaction has not committed yet', async () => {
    forwarding.answer(new EventNotFoundError(EVENT_ID));

    await expectDelayedWithoutAttempt(fakeJob({ ageMs: 1_000 }));
  });

  it('fails for good a job whose event is still missing a minute after the job was added: its callback rolled back', async () => {
    forwarding.answer(new EventNotFoundError(EVENT_ID));
    const job = fakeJob({ ageMs: 61_000 });

    const failure = runJob(job);

    await expect(failure).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failure).rejects.toThrow(`event ${EVENT_ID} is not in the database`);
    expect(job.delays).toEqual([]);
  });

  it('remembers in the job a delivery that PostgreSQL did not record, then delays it: the retry sends nothing', async () => {
    forwarding.answer(
      new DeliveredButNotRecordedError(DELIVERED_MESSAGE_ID, new Error('Connection terminated unexpectedly')),
      'forwarded',
    );
    const job = fakeJob({ attemptsMade: 1 });

    await expectDelayedWithoutAttempt(job);
    expect(job.dataUpdates).toEqual([{ eventId: EVENT_ID.toString(), deliveredMessageId: DELIVERED_MESSAGE_ID }]);
    expect(job.steps).toEqual(['updateData', 'moveToDelayed']);

    // BullMQ runs the job again with the data it was given.
    await expect(runJob(job)).resolves.toBe('forwarded');
    expect(forwarding.calls[1].attempt).toEqual({ number: 2, max: 10, deliveredMessageId: DELIVERED_MESSAGE_ID });
  });
});
