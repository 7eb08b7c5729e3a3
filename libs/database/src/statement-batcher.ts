export interface StatementBatcherOptions<In> {
  /** Statements running at once; calls made meanwhile wait and go together in the next one. */
  maxInFlight: number;
  /** Weight of one statement at most (a call weighs 1 unless `weigh` says otherwise); a heavier call goes alone. */
  maxBatch: number;
  /** A call's share of `maxBatch`, e.g. the rows it writes. */
  weigh?: (input: In) => number;
  /**
   * Whether a failed statement of several calls is run again call by call, so that one bad call
   * cannot fail the others; the calls of a statement that failed otherwise all reject with its error.
   */
  retryAlone?: (error: unknown) => boolean;
}

interface PendingCall<In, Out> {
  input: In;
  resolve: (output: Out) => void;
  reject: (error: unknown) => void;
}

/**
 * Coalesces concurrent calls into one statement. A call waits for the end of the current turn of
 * the event loop, so that the calls made together go together; while `maxInFlight` statements
 * run, calls gather for the next one. Under load a statement carries as many calls as there are
 * concurrent callers (jobs, callbacks), at the cost of a round trip per statement instead of per
 * call; alone, a call waits only a turn of the event loop.
 *
 * `runBatch` answers one output per input, in order; if it throws, every call of the batch
 * rejects with that error, or (with `retryAlone`) is run again on its own.
 */
export class StatementBatcher<In, Out> {
  private pending: PendingCall<In, Out>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly weigh: (input: In) => number;

  constructor(
    private readonly runBatch: (inputs: In[]) => Promise<Out[]>,
    private readonly options: StatementBatcherOptions<In> = { maxInFlight: 2, maxBatch: 1000 },
  ) {
    this.weigh = options.weigh ?? (() => 1);
  }

  run(input: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.pending.length === 0 || this.inFlight >= this.options.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.pending.length > 0 && this.inFlight < this.options.maxInFlight) {
      const batch = this.takeBatch();
      this.inFlight++;
      void this.execute(batch).finally(() => {
        this.inFlight--;
        this.schedule();
      });
    }
  }

  private takeBatch(): PendingCall<In, Out>[] {
    let weight = 0;
    let count = 0;
    while (count < this.pending.length) {
      const next = this.weigh(this.pending[count].input);
      if (count > 0 && weight + next > this.options.maxBatch) break;
      weight += next;
      count++;
    }
    return this.pending.splice(0, count);
  }

  private async execute(batch: PendingCall<In, Out>[]): Promise<void> {
    let outputs: Out[];
    try {
      outputs = await this.runBatch(batch.map((call) => call.input));
      if (outputs.length !== batch.length) throw new Error(`a batch of ${batch.length} calls answered ${outputs.length} results`);
    } catch (error) {
      if (batch.length > 1 && this.options.retryAlone?.(error)) {
        // One after another, in this statement's place: maxInFlight still bounds the connections.
        for (const call of batch) await this.execute([call]);
        return;
      }
      for (const call of batch) call.reject(error);
      return;
    }
    batch.forEach((call, index) => call.resolve(outputs[index]));
  }
}
