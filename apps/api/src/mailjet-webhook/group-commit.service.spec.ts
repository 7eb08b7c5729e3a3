import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { EventJob, IngestEventRepository, IngestRecord, InsertedEvent, Transaction, TransactionRunner } from '@app/database';
import { MAX_EVENTS_PER_JOB } from '@app/queue';
import { EventEnqueuer } from '../outbox/event-enqueuer.service';
import { GroupCommitWriter } from './group-commit.service';

// Ids start just below a digit boundary, so that ids compared or sorted as text would show.
const FIRST_ID = 9999999998n;
const FIRST_JOB_NUMBER = 99;

function record(name: string, fields: Partial<IngestRecord> = {}): IngestRecord {
  return {
    sourceId: 1,
    rawJson: JSON.stringify({ name }),
    eventType: 'sent',
    time: 1433333949,
    email: 'api@mailjet.com',
    messageId: '19421777835146490',
    messageGuid: null,
    dedupeKey: `19421777835146490:sent:${name}`,
    invalidReason: null,
    ...fields,
  };
}
const junk = (name: string) => record(name, { dedupeKey: null, invalidReason: 'unknown "event"' });
/** A record the fake insert refuses, as PostgreSQL refuses a row it cannot store. */
const BAD_JSON = '{"bad": true}';
const bad = () => record('bad', { rawJson: BAD_JSON });

/** Transactions as the writer sees them: each `run` gets its own tx, committed unless the work throws. */
class FakeTransactions implements Pick<TransactionRunner, 'run'> {
  readonly committed: Transaction[] = [];
  readonly rolledBack: Transaction[] = [];
  runs = 0;
  /** The tx whose work is running, if any. */
  open: Transaction | undefined;
  /** Set to fail every `run` before any work, as a pool that cannot connect does. */
  connectError: Error | undefined;

  async run<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    this.runs++;
    if (this.connectError) throw this.connectError;
    const tx: Transaction = { query: () => Promise.reject(new Error('the fake tx runs no SQL')) } as unknown as Transaction;
    this.open = tx;
    try {
      const result = await work(tx);
      this.committed.push(tx);
      return result;
    } catch (error) {
      this.rolledBack.push(tx);
      throw error;
    } finally {
      this.open = undefined;
    }
  }
}

/**
 * Inserts records with ids from a sequence, as the repository does: usable ones named after the
 * statement's job number and their part of at most `maxJobEvents`, junk with no job. A statement
 * with a bad record fails as a whole.
 */
class FakeIngestEvents implements Pick<IngestEventRepository, 'insert' | 'markReceived'> {
  readonly inserts: Array<{ tx: Transaction; rawJson: string[]; maxJobEvents: number }> = [];
  readonly receivedMarks: Array<{ tx: Transaction; ids: bigint[]; insideTransaction: boolean }> = [];
  /** Set to fail every insert, as a connection lost mid-statement does. */
  insertError: Error | undefined;
  private nextId = FIRST_ID;
  private nextJobNumber = FIRST_JOB_NUMBER;

  constructor(private readonly transactions: FakeTransactions) {}

  async insert(tx: Transaction, records: readonly IngestRecord[], maxJobEvents: number): Promise<InsertedEvent[]> {
    this.inserts.push({ tx, rawJson: records.map((r) => r.rawJson), maxJobEvents });
    if (this.insertError) throw this.insertError;
    if (records.some((r) => r.rawJson === BAD_JSON)) throw new Error('invalid input syntax for type json');
    const jobNumber = this.nextJobNumber++;
    let usable = 0;
    return records.map((r) => ({
      id: this.nextId++,
      sourceId: r.sourceId,
      jobId: r.invalidReason === null ? `ingest-${jobNumber}-${Math.floor(usable++ / maxJobEvents)}` : null,
    }));
  }

  async markReceived(tx: Transaction, ids: readonly bigint[]): Promise<void> {
    this.receivedMarks.push({ tx, ids: [...ids], insideTransaction: this.transactions.open === tx });
  }
}

/** Records the jobs of each addJobs, and whether a transaction was open (jobs go before the commit). */
class FakeEnqueuer implements Pick<EventEnqueuer, 'addJobs'> {
  readonly batches: EventJob[][] = [];
  readonly insideTransaction: boolean[] = [];
  error: Error | undefined;

  constructor(private readonly transactions: FakeTransactions) {}

  async addJobs(jobs: readonly EventJob[]): Promise<void> {
    if (this.error) throw this.error;
    this.batches.push(jobs.map((job) => ({ jobId: job.jobId, sourceId: job.sourceId, eventIds: [...job.eventIds] })));
    this.insideTransaction.push(this.transactions.open !== undefined);
  }
}

/** `count` consecutive ids from `first`. */
const idsFrom = (first: bigint, count: number) => Array.from({ length: count }, (_, i) => first + BigInt(i));

describe('GroupCommitWriter', () => {
  let transactions: FakeTransactions;
  let events: FakeIngestEvents;
  let enqueuer: FakeEnqueuer;
  let writer: GroupCommitWriter;
  let warnings: jest.SpyInstance;

  beforeEach(async () => {
    transactions = new FakeTransactions();
    events = new FakeIngestEvents(transactions);
    enqueuer = new FakeEnqueuer(transactions);
    const moduleRef = await Test.createTestingModule({
      providers: [GroupCommitWriter, TransactionRunner, IngestEventRepository, EventEnqueuer],
    })
      .overrideProvider(TransactionRunner)
      .useValue(transactions)
      .overrideProvider(IngestEventRepository)
      .useValue(events)
      .overrideProvider(EventEnqueuer)
      .useValue(enqueuer)
      .compile();
    writer = moduleRef.get(GroupCommitWriter);
    warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(() => warnings.mockRestore());

  it('stores concurrent callbacks in one insert and queues their usable events as one job, answering each its own ids', async () => {
    const callbacks = [
      [record('a1'), junk('a2'), record('a3')],
      [junk('b1')],
      [record('c1'), record('c2')],
    ];

    const answers = await Promise.all(callbacks.map((records) => writer.store(records)));

    expect(answers).toEqual([[FIRST_ID, FIRST_ID + 2n], [], [FIRST_ID + 4n, FIRST_ID + 5n]]);
    expect(events.inserts.map((insert) => insert.rawJson)).toEqual([callbacks.flat().map((r) => r.rawJson)]);
    expect(events.inserts[0].maxJobEvents).toBe(MAX_EVENTS_PER_JOB);
    expect(enqueuer.batches).toEqual([
      [{ jobId: `ingest-${FIRST_JOB_NUMBER}-0`, sourceId: 1, eventIds: [FIRST_ID, FIRST_ID + 2n, FIRST_ID + 4n, FIRST_ID + 5n] }],
    ]);
    expect(enqueuer.insideTransaction).toEqual([true]);
    expect(transactions.committed).toHaveLength(1);
    expect(events.inserts[0].tx).toBe(transactions.committed[0]);
    expect(events.receivedMarks).toEqual([]);
  });

  it(`queues a group of more than ${MAX_EVENTS_PER_JOB} usable events as several jobs, in one addJobs`, async () => {
    // Junk first and in between: a job counts usable events only.
    const big = Array.from({ length: 2 * MAX_EVENTS_PER_JOB }, (_, i) => record(`a${i}`));
    const split = Math.round(1.4 * MAX_EVENTS_PER_JOB);
    const callbacks = [[junk('j1'), ...big.slice(0, split)], [...big.slice(split), junk('j2'), record('b1')]];

    const answers = await Promise.all(callbacks.map((records) => writer.store(records)));

    const usable = [...idsFrom(FIRST_ID + 1n, 2 * MAX_EVENTS_PER_JOB), FIRST_ID + 2n + 2n * BigInt(MAX_EVENTS_PER_JOB)];
    expect(answers).toEqual([usable.slice(0, split), usable.slice(split)]);
    expect(events.inserts).toHaveLength(1);
    expect(enqueuer.batches).toEqual([
      [
        { jobId: `ingest-${FIRST_JOB_NUMBER}-0`, sourceId: 1, eventIds: usable.slice(0, MAX_EVENTS_PER_JOB) },
        { jobId: `ingest-${FIRST_JOB_NUMBER}-1`, sourceId: 1, eventIds: usable.slice(MAX_EVENTS_PER_JOB, 2 * MAX_EVENTS_PER_JOB) },
        { jobId: `ingest-${FIRST_JOB_NUMBER}-2`, sourceId: 1, eventIds: usable.slice(2 * MAX_EVENTS_PER_JOB) },
      ],
    ]);
  });

  it('adds no jobs for a group of junk only', async () => {
    await expect(Promise.all([writer.store([junk('a')]), writer.store([junk('b')])])).resolves.toEqual([[], []]);

    expect(events.inserts).toHaveLength(1);
    expect(enqueuer.batches).toEqual([]);
  });

  it('writes a failing group again callback by callback, so that only the bad callback rejects', async () => {
    const good = [record('a1')];
    const withBad = [record('b1'), bad()];
    const alsoGood = [record('c1'), junk('c2')];

    const results = await Promise.allSettled([writer.store(good), writer.store(withBad), writer.store(alsoGood)]);

    expect(results).toEqual([
      { status: 'fulfilled', value: [FIRST_ID] },
      { status: 'rejected', reason: new Error('invalid input syntax for type json') },
      { status: 'fulfilled', value: [FIRST_ID + 1n] },
    ]);
    // The group, then each callback alone; the bad one's transaction is rolled back, nothing of it queued.
    expect(events.inserts.map((insert) => insert.rawJson.length)).toEqual([5, 1, 2, 2]);
    expect(transactions.rolledBack).toHaveLength(2);
    expect(transactions.committed).toHaveLength(2);
    // Each callback alone is a statement of its own, so a job of its own.
    const jobs = enqueuer.batches.flat().sort((a, b) => (a.eventIds[0] < b.eventIds[0] ? -1 : 1));
    expect(jobs).toEqual([
      { jobId: expect.stringMatching(/^ingest-\d+-0$/), sourceId: 1, eventIds: [FIRST_ID] },
      { jobId: expect.stringMatching(/^ingest-\d+-0$/), sourceId: 1, eventIds: [FIRST_ID + 1n] },
    ]);
    expect(jobs[0].jobId).not.toBe(jobs[1].jobId);
  });

  it.each([
    ['cannot connect', 'connect' as const, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['drops the connection during the insert', 'insert' as const, new Error('Connection terminated unexpectedly')],
  ])('rejects every callback of a group, without writing them one by one, when the database %s', async (_, where, outage) => {
    if (where === 'connect') transactions.connectError = outage;
    else events.insertError = outage;

    const results = await Promise.allSettled(['a', 'b', 'c'].map((name) => writer.store([record(name)])));

    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const result of results) expect((result as PromiseRejectedResult).reason).toBe(outage);
    expect(transactions.runs).toBe(1);
    expect(events.inserts).toHaveLength(where === 'connect' ? 0 : 1);
    expect(enqueuer.batches).toEqual([]);
  });

  it('commits the events as received, in the same transaction, when Redis refuses their jobs', async () => {
    enqueuer.error = new Error('Stream isn\'t writeable and enableOfflineQueue options is false');

    const answers = await Promise.all([writer.store([record('a1'), junk('a2')]), writer.store([record('b1')])]);

    expect(answers).toEqual([[FIRST_ID], [FIRST_ID + 2n]]);
    expect(events.receivedMarks).toEqual([{ tx: events.inserts[0].tx, ids: [FIRST_ID, FIRST_ID + 2n], insideTransaction: true }]);
    expect(transactions.committed).toEqual([events.inserts[0].tx]);
    expect(warnings).toHaveBeenCalledWith(expect.stringMatching(/^2 event\(s\) stored as received/));
  });
});
