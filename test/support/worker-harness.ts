import { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { LightMyRequestResponse } from 'fastify';
import { AppConfig } from '@app/config';
import { createWorkerApp } from '../../apps/worker/src/worker.app';

/** The worker as production builds it, consuming the queue of the given configuration. */
export class WorkerHarness {
  private constructor(readonly app: NestFastifyApplication) {}

  static async start(config: AppConfig): Promise<WorkerHarness> {
    const app = await createWorkerApp(config);
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    return new WorkerHarness(app);
  }

  get(url: string): Promise<LightMyRequestResponse> {
    return this.app.getHttpAdapter().getInstance().inject({ method: 'GET', url });
  }

  async close(): Promise<void> {
    await this.app.close();
  }
}
