import 'reflect-metadata';
import { ConfigurationError, configFromEnvironment } from '@app/config';
import { createWorkerApp } from './worker.app';

async function bootstrap(): Promise<void> {
  const config = configFromEnvironment(['SEGMENT_WRITE_KEY']);
  const app = await createWorkerApp(config);
  await app.listen(config.workerHealthPort, config.http.host);
}

bootstrap().catch((error: Error) => {
  console.error(error instanceof ConfigurationError ? `worker: ${error.message}` : error);
  process.exit(1);
});
