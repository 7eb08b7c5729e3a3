import { AppConfig } from '@app/config';
import { ApiHarness } from './api-harness';
import { TestDatabase } from './database';
import { SegmentSink } from './segment-sink';
import { SEGMENT_WRITE_KEY, testConfig } from './test-env';
import { WorkerHarness } from './worker-harness';

/** The whole pipeline for a suite: the api and a worker on one queue, forwarding to a local sink. */
export class PipelineHarness {
  private constructor(
    readonly api: ApiHarness,
    public worker: WorkerHarness,
    readonly sink: SegmentSink,
    private readonly config: AppConfig,
  ) {}

  /** Starts from empty tables: rows another suite left queued have no worker here. */
  static async start(db: TestDatabase, overrides: Record<string, string> = {}): Promise<PipelineHarness> {
    await db.reset();
    const sink = await new SegmentSink(SEGMENT_WRITE_KEY).start();
    const config = testConfig({ SEGMENT_HOST: sink.url, ...overrides });
    const api = await ApiHarness.start(config);
    const worker = await WorkerHarness.start(config);
    return new PipelineHarness(api, worker, sink, config);
  }

  /** Between two tests: no job, no event and no scripted answer of the previous one is left. */
  async reset(db: TestDatabase): Promise<void> {
    await this.api.reset(db);
    this.sink.reset();
  }

  /** A new worker of the suite's configuration, after a test closed this one to run its own. */
  async startWorker(): Promise<void> {
    this.worker = await WorkerHarness.start(this.config);
  }

  async close(): Promise<void> {
    await this.worker.close();
    await this.api.close();
    await this.sink.stop();
  }
}
