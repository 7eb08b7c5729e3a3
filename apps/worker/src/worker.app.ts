import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppConfig } from '@app/config';
import { WorkerModule } from './worker.module';

/** The worker: consumes the queue; its only HTTP routes are health, on WORKER_HEALTH_PORT. */
export async function createWorkerApp(config: AppConfig): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(WorkerModule.register(config), new FastifyAdapter(), {
    logger: config.createLogger(),
  });
  app.enableShutdownHooks();
  return app;
}
