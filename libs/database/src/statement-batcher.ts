export interface StatementBatcherOptions {
  /** Statements running at once; calls made meanwhile wait and go together in the next one. */
  maxInFlight: number;
  /** Calls in one statement at most. */
  maxBatch: number;
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
 * concurrent jobs, at the cost of a round trip per statement instead of per call; alone, a call
 * waits only a turn of the event loop.
 *
 * `runBatch` answers one output per input, in order; if it throws, every call of the batch
 * rejects with that error.
 */
export class StatementBatcher<In, Out> {
  private pending: PendingCall<In, Out>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly runBatch: (inputs: In[]) => Promise<Out[]>,
    private readonly options: StatementBatcherOptions = { maxInFlight: 2, maxBatch: 1000 },
  ) {}

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
      const batch = this.pending.splice(0, this.options.maxBatch);
      this.inFlight++;
      void this.execute(batch).finally(() => {
        this.inFlight--;
        this.schedule();
      });
    }
  }

  private async execute(batch: PendingCall<In, Out>[]): Promise<void> {
    let outputs: Out[];
    try {
      outputs = await this.runBatch(batch.map((call) => call.input));
      if (outputs.length !== batch.length) throw new Error(`a batch of ${batch.length} calls answered ${outputs.length} results`);
    } catch (error) {
      for (const call of batch) call.reject(error);
      return;
    }
    batch.forEach((call, index) => call.resolve(outputs[index]));
  }
}
