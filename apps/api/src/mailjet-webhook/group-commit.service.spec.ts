import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { IngestEventRepository, InsertedEvent, Transaction, TransactionRunner } from '@app/database';
import { MailjetEventRecord } from '@app/mailjet';
import { EventEnqueuer } from '../outbox/event-enqueuer.service';
import { GroupCommitWriter } from './group-commit.service';

// Ids start just below a digit boundary, so that ids compared or sorted as text would show.
const FIRST_ID = 9999999998n;

function record(name: string, fields: Partial<MailjetEventRecord> = {}): MailjetEventRecord {
  return {
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

/** Inserts records with ids from a sequence; a statement with a bad record fails as a whole. */
class FakeIngestEvents implements Pick<IngestEventRepository, 'insert' | 'markReceived'> {
  readonly inserts: Array<{ tx: Transaction; rawJson: string[] }> = [];
  readonly receivedMarks: Array<{ tx: Transaction; ids: bigint[]; insideTransaction: boolean }> = [];
  /** Set to fail every insert, as a connection lost mid-statement does. */
  insertError: Error | undefined;
  private nextId = FIRST_ID;

  constructor(private readonly transactions: FakeTransactions) {}

  async insert(tx: Transaction, records: readonly MailjetEventRecord[]): Promise<InsertedEvent[]> {
    this.inserts.push({ tx, rawJson: records.map((r) => r.rawJson) });
    if (this.insertError) throw this.insertError;
    if (records.some((r) => r.rawJson === BAD_JSON)) throw new Error('invalid input syntax for type json');
    return records.map((r) => ({ id: this.nextId++, usable: r.invalidReason === null }));
  }

  async markReceived(tx: Transaction, ids: readonly bigint[]): Promise<void> {
    this.receivedMarks.push({ tx, ids: [...ids], insideTransaction: this.transactions.open === tx });
  }
}

/** Records the job batches it is asked to add; fails them with `error` when set. */
class FakeEnqueuer implements Pick<EventEnqueuer, 'addJobs'> {
  readonly batches: bigint[][] = [];
  error: Error | undefined;

  async addJobs(eventIds: readonly bigint[]): Promise<void> {
    if (this.error) throw this.error;
    this.batches.push([...eventIds]);
  }
}

describe('GroupCommitWriter', () => {
  let transactions: FakeTransactions;
  let events: FakeIngestEvents;
  let enqueuer: FakeEnqueuer;
  let writer: GroupCommitWriter;
  let warnings: jest.SpyInstance;

  beforeEach(async () => {
    transactions = new FakeTransactions();
    events = new FakeIngestEvents(transactions);
    enqueuer = new FakeEnqueuer();
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

  it('stores concurrent callbacks in one insert and one addJobs, answering each its own usable ids in order', async () => {
    const callbacks = [
      [record('a1'), junk('a2'), record('a3')],
      [junk('b1')],
      [record('c1'), record('c2')],
    ];

    const answers = await Promise.all(callbacks.map((records) => writer.store(records)));

    expect(answers).toEqual([[FIRST_ID, FIRST_ID + 2n], [], [FIRST_ID + 4n, FIRST_ID + 5n]]);
    expect(events.inserts.map((insert) => insert.rawJson)).toEqual([callbacks.flat().map((r) => r.rawJson)]);
    expect(enqueuer.batches).toEqual([[FIRST_ID, FIRST_ID + 2n, FIRST_ID + 4n, FIRST_ID + 5n]]);
    expect(transactions.committed).toHaveLength(1);
    expect(events.inserts[0].tx).toBe(transactions.committed[0]);
    expect(events.receivedMarks).toEqual([]);
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
    expect(enqueuer.batches.sort((a, b) => (a[0] < b[0] ? -1 : 1))).toEqual([[FIRST_ID], [FIRST_ID + 1n]]);
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
