import 'reflect-metadata';
import { ConfigurationError, configFromEnvironment } from '@app/config';
import { createApiApp } from './api.app';

async function bootstrap(): Promise<void> {
  const config = configFromEnvironment(['MAILJET_WEBHOOK_USER', 'MAILJET_WEBHOOK_PASSWORD', 'ADMIN_TOKEN']);
  const app = await createApiApp(config);
  await app.listen(config.http.port, config.http.host);
}

bootstrap().catch((error: Error) => {
  console.error(error instanceof ConfigurationError ? `api: ${error.message}` : error);
  process.exit(1);
});
