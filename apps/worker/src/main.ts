import 'reflect-metadata';
import { ConfigurationError, configFromEnvironment, createJsonLogger, logEverythingAsJson } from '@app/config';
import { createWorkerApp } from './worker.app';

const logger = createJsonLogger();
logEverythingAsJson(logger, 'worker');

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
