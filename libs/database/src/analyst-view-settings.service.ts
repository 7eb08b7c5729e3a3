import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { AnalystViewSettingsRepository } from './analyst-view-settings.repository';
import { isDatabaseUnavailable } from './database-errors';

/** How often a process that could not reach PostgreSQL at start tries again to write the settings. */
export const ANALYST_VIEW_SETTINGS_RETRY_MS = 5_000;

/**
 * Writes, at every start of the api and the worker, the configuration that the `mailjet.*` views
 * read (USER_ID_PAYLOAD_KEY), so that their user_id is the one the worker forwards. A PostgreSQL
 * that is away at start delays it (retried in the background); any other error stops the process
 * at start, like a database that misses a migration.
 */
@Injectable()
export class AnalystViewSettings implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AnalystViewSettings.name);
  private retry?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly repository: AnalystViewSettingsRepository,
    private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.write();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      this.logger.warn(`analysts' view settings not written yet, retrying: ${(error as Error).message}`);
      this.scheduleRetry();
    }
  }

  onApplicationShutdown(): void {
    this.closed = true;
    clearTimeout(this.retry);
  }

  private async write(): Promise<void> {
    const key = this.config.userIdPayloadKey;
    const outcome = await this.repository.writeUserIdPayloadKey(key);
    // Several processes write the same value; a different one means a deployment changed it, or
    // two processes disagree (set USER_ID_PAYLOAD_KEY the same on the api and the worker).
    if (outcome.changed && outcome.previous !== null) {
      this.logger.warn(
        `USER_ID_PAYLOAD_KEY is now ${JSON.stringify(key)} for the mailjet.* views (it was ${JSON.stringify(outcome.previous)}): ` +
          `their user_id reads it for every event, those forwarded before too`,
      );
    }
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    this.retry = setTimeout(() => {
      this.write().catch((error: Error) => {
        if (this.closed) return;
        this.logger.warn(`analysts' view settings not written yet, retrying: ${error.message}`);
        this.scheduleRetry();
      });
    }, ANALYST_VIEW_SETTINGS_RETRY_MS);
    this.retry.unref();
  }
}
