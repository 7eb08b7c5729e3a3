import 'reflect-metadata';
import { ConfigurationError, configFromEnvironment, createJsonLogger, logEverythingAsJson } from '@app/config';
import { createApiApp } from './api.app';

const logger = createJsonLogger();
logEverythingAsJson(logger, 'api');

async function bootstrap(): Promise<void> {
  const config = configFromEnvironment(['MAILJET_WEBHOOK_USER', 'MAILJET_WEBHOOK_PASSWORD', 'ADMIN_TOKEN']);
  logger.setLogLevels(config.logLevels);
  const app = await createApiApp(config);
  await app.listen(config.http.port, config.http.host);
}

bootstrap().catch((error: Error) => {
  // One line; a configuration error names the variables, never their values.
  logger.fatal(error instanceof ConfigurationError ? error.message : error, 'api');
  process.exit(1);
});
