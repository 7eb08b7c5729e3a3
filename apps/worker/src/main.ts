import 'reflect-metadata';
import { ConfigurationError, configFromEnvironment, createJsonLogger, logEverythingAsJson } from '@app/config';
import { EXIT_DEADLINE_MS } from './exit-deadline';
import { createWorkerApp } from './worker.app';

const logger = createJsonLogger();
logEverythingAsJson(logger, 'worker');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  // `once`: Nest re-raises the signal when its shutdown is done, which must then end the process.
  process.once(signal, () => {
    setTimeout(() => {
      logger.error(`the shutdown did not finish within ${EXIT_DEADLINE_MS} ms of ${signal}; exiting`, 'worker');
      process.exit(1);
    }, EXIT_DEADLINE_MS).unref();
  });
}

async function bootstrap(): Promise<void> {
  const config = configFromEnvironment(['SEGMENT_WRITE_KEY']);
  logger.setLogLevels(config.logLevels);
  const app = await createWorkerApp(config);
  await app.listen(config.workerHealthPort, config.http.host);
}

bootstrap().catch((error: Error) => {
  // One line; a configuration error names the variables, never their values.
  logger.fatal(error instanceof ConfigurationError ? error.message : error, 'worker');
  process.exit(1);
});
