import { Test } from '@nestjs/testing';
import { DelayedError, Job, UnrecoverableError } from 'bullmq';
import { AppConfig, configFromEnvironment } from '@app/config';
import { ForwardEventsJob, ForwardEventsJobData } from '@app/queue';
import { SegmentDeliveryError, segmentMessageIdOf } from '@app/segment';
import { SegmentForwardingProcessor } from './segment-forwarding.processor';
import {
  Attempt,
  DeliveredButNotRecordedError,
  EventsNotFoundError,
  JobOutcome,
  RetryableEventsError,
  SegmentForwardingService,
} from './segment-forwarding.service';

// Beyond 2^53: the processor must hand the service the exact ids.
const FIRST_ID = 9007199254740993n;
const JOB_ID = 'ingest-41-0';
const GROUP_DATA: ForwardEventsJobData = { events: `${FIRST_ID}-${FIRST_ID + 2n}`, count: 3 };
const MESSAGE_ID = segmentMessageIdOf('19421777835146490:sent:1433333949');
const OTHER_MESSAGE_ID = segmentMessageIdOf('19421777396190490:open:1433103519');
const LOCK_TOKEN = 'lock-token';
const OUTCOME: JobOutcome = { forwarded: 2, duplicate: 1, skipped: 0, parked: 0 };

/** The service as the processor sees it: answers each forward with the next scripted outcome or error. */
class ScriptedForwarding implements Pick<SegmentForwardingService, 'forward'> {
  readonly calls: Array<{ jobId: string; job: ForwardEventsJob; attempt: Attempt }> = [];
  private readonly script: Array<JobOutcome | Error> = [];

  answer(...results: Array<JobOutcome | Error>): void {
    this.script.push(...results);
  }

  async forward(jobId: string, job: ForwardEventsJob, attempt: Attempt): Promise<JobOutcome> {
    this.calls.push({ jobId, job, attempt });
    const result = this.script.shift();
    if (result === undefined) throw new Error('forward called more often than scripted');
    if (result instanceof Error) throw result;
    return result;
  }
}

/** The part of a BullMQ job the processor uses, recording what it asks of the queue. */
function fakeJob(fields: { id?: string; data?: unknown; attemptsMade?: number; attempts?: number; ageMs?: number } = {}) {
  const job = {
    id: fields.id ?? JOB_ID,
    data: 'data' in fields ? fields.data : GROUP_DATA,
    attemptsMade: fields.attemptsMade ?? 0,
    opts: { attempts: 'attempts' in fields ? fields.attempts : 10 },
    timestamp: Date.now() - (fields.ageMs ?? 0),
    dataUpdates: [] as unknown[],
    delays: [] as Array<{ until: number; token?: string }>,
    /** The order of the job's calls, to check that the deliveries are remembered before the job is delayed. */
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
const connectionLost = () => withCode(new Error('Connection terminated unexpectedly'), 'ECONNRESET');

describe('SegmentForwardingProcessor', () => {
  let forwarding: ScriptedForwarding;
  let processor: SegmentForwardingProcessor;

  // The testing module builds the processor with its real dependencies' tokens; without BullModule
  // no explorer turns @Processor into a Worker, so no Redis is needed, and `process` is called as
  // BullMQ would call it.
  beforeEach(async () => {
    forwarding = new ScriptedForwarding();
    const moduleRef = await Test.createTestingModule({
      providers: [SegmentForwardingProcessor, SegmentForwardingService, { provide: AppConfig, useValue: configFromEnvironment([]) }],
    })
      .overrideProvider(SegmentForwardingService)
      .useValue(forwarding)
      .compile();
    processor = moduleRef.get(SegmentForwardingProcessor);
  });

  const runJob = (job: FakeJob) => processor.process(job as unknown as Job, LOCK_TOKEN);

  /**
   * Runs the job and expects it handed back to the delayed set without spending an attempt:
   * 1 to 2 s away for an outage, 0.1 to 0.2 s for events not committed yet.
   */
  async function expectDelayedWithoutAttempt(job: FakeJob, retryInMs = 1000): Promise<void> {
    const before = Date.now();
    await expect(runJob(job)).rejects.toBeInstanceOf(DelayedError);
    expect(job.delays).toHaveLength(1);
    expect(job.delays[0].token).toBe(LOCK_TOKEN);
    expect(job.delays[0].until).toBeGreaterThanOrEqual(before + retryInMs);
    expect(job.delays[0].until).toBeLessThanOrEqual(Date.now() + 2 * retryInMs);
  }

  it("hands the service the job's id, its exact event ids and which attempt this is, and returns the outcome", async () => {
    forwarding.answer(OUTCOME);

    await expect(runJob(fakeJob({ attemptsMade: 2, attempts: 10 }))).resolves.toEqual(OUTCOME);

    expect(forwarding.calls).toEqual([
      { jobId: JOB_ID, job: { eventIds: [FIRST_ID, FIRST_ID + 1n, FIRST_ID + 2n], delivered: new Map() }, attempt: { number: 3, max: 10 } },
    ]);
  });

  it('takes a job without an attempts option as its only attempt', async () => {
    forwarding.answer(OUTCOME);

    await runJob(fakeJob({ attempts: undefined }));
    expect(forwarding.calls[0].attempt).toEqual({ number: 1, max: 1 });
  });

  it('takes a job of the version before groups, with the delivery it remembers', async () => {
    forwarding.answer(OUTCOME, OUTCOME);

    await runJob(fakeJob({ id: `event-${FIRST_ID}`, data: { eventId: `${FIRST_ID}` } }));
    await runJob(fakeJob({ id: `event-${FIRST_ID}`, data: { eventId: `${FIRST_ID}`, deliveredMessageId: MESSAGE_ID } }));

    expect(forwarding.calls.map(({ jobId, job }) => ({ jobId, job }))).toEqual([
      { jobId: `event-${FIRST_ID}`, job: { eventIds: [FIRST_ID], delivered: new Map() } },
      { jobId: `event-${FIRST_ID}`, job: { eventIds: [FIRST_ID], delivered: new Map([[FIRST_ID, MESSAGE_ID]]) } },
    ]);
  });

  it.each([
    ['no data at all', null],
    ['neither events nor an event id', {}],
    ['events that are not ranges of ids', { events: '1;2', count: 2 }],
    ['more than 500 events', { events: '1-501', count: 500 }],
    ['no count', { events: '1-2' }],
    ['a delivered map of something else', { ...GROUP_DATA, delivered: { [`${FIRST_ID}`]: 'not-ours' } }],
    ['a numeric legacy event id', { eventId: 42 }],
    ['a legacy delivered messageId of something else', { eventId: '1', deliveredMessageId: 'not-ours' }],
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

  it.each([
    ['Segment cannot be reached', new SegmentDeliveryError('Segment unreachable: connect ECONNREFUSED 127.0.0.1:443', true)],
    [
      'some events of the job could not be delivered',
      new RetryableEventsError(2, new SegmentDeliveryError('Segment unreachable: connect ECONNREFUSED 127.0.0.1:443', true)),
    ],
  ])('spends an attempt when %s, although its error says ECONNREFUSED too', async (_, error) => {
    forwarding.answer(error);
    const job = fakeJob();

    await expect(runJob(job)).rejects.toBe(error);
    expect(job.delays).toEqual([]);
  });

  it.each([
    ['a query error', withCode(new Error('column "nope" does not exist'), '42703')],
    ['an UnrecoverableError of the service', new UnrecoverableError('1 of 3 event(s) failed: Segment answered 400')],
  ])('rethrows %s as it is, for BullMQ to retry or fail', async (_, error) => {
    forwarding.answer(error);
    const job = fakeJob();

    await expect(runJob(job)).rejects.toBe(error);
    expect(job.delays).toEqual([]);
  });

  it.each([1_000, 59_000])('waits, without spending an attempt, for events still missing %i ms after their job was added', async (ageMs) => {
    forwarding.answer(new EventsNotFoundError(JOB_ID));
    const job = fakeJob({ ageMs });

    await expectDelayedWithoutAttempt(job, 100);
    expect(job.dataUpdates).toEqual([]);
  });

  it('fails for good a job whose events are still missing a minute after it was added: their callback rolled back', async () => {
    forwarding.answer(new EventsNotFoundError(JOB_ID));
    const job = fakeJob({ ageMs: 61_000 });

    const failure = runJob(job);

    await expect(failure).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failure).rejects.toThrow(`the events of job ${JOB_ID} are not in the database`);
    expect(job.delays).toEqual([]);
  });

  it('adds to the job the deliveries PostgreSQL did not record, then delays it: the retry knows them all', async () => {
    const job = fakeJob({ attemptsMade: 1, data: { ...GROUP_DATA, delivered: { [`${FIRST_ID}`]: MESSAGE_ID } } });
    forwarding.answer(new DeliveredButNotRecordedError(new Map([[FIRST_ID + 2n, OTHER_MESSAGE_ID]]), connectionLost()), OUTCOME);

    await expectDelayedWithoutAttempt(job);
    expect(job.dataUpdates).toEqual([
      { ...GROUP_DATA, delivered: { [`${FIRST_ID}`]: MESSAGE_ID, [`${FIRST_ID + 2n}`]: OTHER_MESSAGE_ID } },
    ]);
    expect(job.steps).toEqual(['updateData', 'moveToDelayed']);

    // BullMQ runs the job again with the data it was given, on the same attempt.
    await expect(runJob(job)).resolves.toEqual(OUTCOME);
    expect(forwarding.calls[1]).toEqual({
      jobId: JOB_ID,
      job: {
        eventIds: [FIRST_ID, FIRST_ID + 1n, FIRST_ID + 2n],
        delivered: new Map([
          [FIRST_ID, MESSAGE_ID],
          [FIRST_ID + 2n, OTHER_MESSAGE_ID],
        ]),
      },
      attempt: { number: 2, max: 10 },
    });
  });

  it('remembers an unrecorded delivery in a job of the version before groups, in a shape its retry reads', async () => {
    const legacy = { eventId: `${FIRST_ID}` };
    const job = fakeJob({ id: `event-${FIRST_ID}`, data: legacy });
    forwarding.answer(new DeliveredButNotRecordedError(new Map([[FIRST_ID, MESSAGE_ID]]), connectionLost()), OUTCOME);

    await expectDelayedWithoutAttempt(job);
    expect(job.dataUpdates).toEqual([{ ...legacy, delivered: { [`${FIRST_ID}`]: MESSAGE_ID } }]);

    await runJob(job);
    expect(forwarding.calls[1].job).toEqual({ eventIds: [FIRST_ID], delivered: new Map([[FIRST_ID, MESSAGE_ID]]) });
  });
});
