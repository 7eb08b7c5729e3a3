import { waitFor } from '../../../test/support/wait-for';
import { StatementBatcher } from './statement-batcher';

/** A batch function that records each batch and answers when told to. */
function recordingBatches() {
  const batches: number[][] = [];
  const answers: Array<() => void> = [];
  const runBatch = (inputs: number[]) =>
    new Promise<string[]>((resolve) => {
      batches.push(inputs);
      answers.push(() => resolve(inputs.map((input) => `result ${input}`)));
    });
  return { batches, answers, runBatch };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('StatementBatcher', () => {
  it('sends calls made in the same turn of the event loop as one batch, answering each its own result', async () => {
    const { batches, answers, runBatch } = recordingBatches();
    const batcher = new StatementBatcher(runBatch, { maxInFlight: 1, maxBatch: 100 });

    const results = Promise.all([1, 2, 3].map((input) => batcher.run(input)));
    await nextTurn();
    answers[0]();

    await expect(results).resolves.toEqual(['result 1', 'result 2', 'result 3']);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('gathers the calls made while a batch runs into the next one', async () => {
    const { batches, answers, runBatch } = recordingBatches();
    const batcher = new StatementBatcher(runBatch, { maxInFlight: 1, maxBatch: 100 });

    const first = batcher.run(1);
    await nextTurn();
    const later = [batcher.run(2), batcher.run(3)];
    await nextTurn();
    expect(batches).toEqual([[1]]);

    answers[0]();
    await first;
    await waitFor('the second batch', () => batches.length === 2, { intervalMs: 1 });
    expect(batches).toEqual([[1], [2, 3]]);
    answers[1]();
    await expect(Promise.all(later)).resolves.toEqual(['result 2', 'result 3']);
  });

  it('runs up to maxInFlight batches at once and splits at maxBatch', async () => {
    const { batches, runBatch } = recordingBatches();
    const batcher = new StatementBatcher(runBatch, { maxInFlight: 2, maxBatch: 2 });

    for (const input of [1, 2, 3, 4, 5]) void batcher.run(input);
    await nextTurn();

    expect(batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it('rejects every call of a batch that failed, and goes on with the next', async () => {
    let calls = 0;
    const batcher = new StatementBatcher<number, number>(
      async (inputs) => {
        calls++;
        if (calls === 1) throw new Error('connection terminated');
        return inputs.map((input) => input * 10);
      },
      { maxInFlight: 1, maxBatch: 100 },
    );

    const failed = [batcher.run(1), batcher.run(2)];
    await expect(Promise.allSettled(failed)).resolves.toEqual([
      { status: 'rejected', reason: new Error('connection terminated') },
      { status: 'rejected', reason: new Error('connection terminated') },
    ]);
    await expect(batcher.run(3)).resolves.toBe(30);
  });

  it('rejects a batch whose function answered the wrong number of results', async () => {
    const batcher = new StatementBatcher<number, number>(async () => [1], { maxInFlight: 1, maxBatch: 100 });

    await expect(Promise.all([batcher.run(1), batcher.run(2)])).rejects.toThrow('a batch of 2 calls answered 1 results');
  });
});

describe('StatementBatcher with weights and retryAlone (the ingest group commit)', () => {
  it('fills a statement up to maxBatch by weight, and sends a call heavier than that alone', async () => {
    const { batches, runBatch } = recordingBatches();
    const batcher = new StatementBatcher(runBatch, { maxInFlight: 3, maxBatch: 10, weigh: (rows) => rows });

    for (const rows of [4, 5, 2, 30, 1]) void batcher.run(rows);
    await nextTurn();

    expect(batches).toEqual([[4, 5], [2], [30]]);
  });

  it('runs a failed statement again call by call, so that one bad call fails alone', async () => {
    const statements: number[][] = [];
    const batcher = new StatementBatcher<number, number>(
      async (inputs) => {
        statements.push(inputs);
        if (inputs.includes(13)) throw new Error(`bad input in ${inputs.join(',')}`);
        return inputs.map((input) => input * 10);
      },
      { maxInFlight: 1, maxBatch: 100, retryAlone: (error) => !/unreachable/.test((error as Error).message) },
    );

    const results = await Promise.allSettled([1, 13, 3].map((input) => batcher.run(input)));

    expect(results).toEqual([
      { status: 'fulfilled', value: 10 },
      { status: 'rejected', reason: new Error('bad input in 13') },
      { status: 'fulfilled', value: 30 },
    ]);
    expect(statements).toEqual([[1, 13, 3], [1], [13], [3]]);
  });

  it('does not split a statement that failed for a reason that every call would meet', async () => {
    const statements: number[][] = [];
    const batcher = new StatementBatcher<number, number>(
      async (inputs) => {
        statements.push(inputs);
        throw new Error('database unreachable');
      },
      { maxInFlight: 1, maxBatch: 100, retryAlone: (error) => !/unreachable/.test((error as Error).message) },
    );

    const results = await Promise.allSettled([1, 2].map((input) => batcher.run(input)));

    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    expect(statements).toEqual([[1, 2]]);
  });
});
