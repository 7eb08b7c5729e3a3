import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import { AppConfig } from '@app/config';
import { isDatabaseUnavailable } from '@app/database';
import { presetOfHost } from './destination-presets';
import { SecretBox, SecretsKeyError } from './secret-box';
import { DEFAULT_SOURCE_ID, SourceRepository, SourceRow } from './source.repository';

/** Every process reloads the sources at least this often, whatever it was told. */
export const SOURCES_RELOAD_INTERVAL_MS = 30_000;
const LISTEN_RETRY_MS = 5_000;
const NOTIFY_CHANNEL = 'sources_changed';

/** A source as the processes use it, with its secrets open. */
export interface KnownSource {
  id: number;
  slug: string;
  name: string;
  paused: boolean;
  deleted: boolean;
  destination: {
    preset: string;
    host: string;
    /** Undefined for the default source in a process that is not given SEGMENT_WRITE_KEY (the api). */
    writeKey: string | undefined;
  };
  /** The Basic credentials Mailjet may send: the current password, and the previous one until it expires. */
  webhook: { user: string; passwords: Array<{ password: string; validUntil: number | null }> };
  mailjet: { apiKey: string; apiSecret: string } | null;
}

/** A source whose secrets this process cannot open (SECRETS_KEY missing or another): it serves none of its events. */
export interface UnreadableSource {
  id: number;
  slug: string;
  reason: string;
}

/**
 * The sources, cached in every process, so that a callback costs no query to find its source.
 * Reloaded when PostgreSQL says the table changed (a trigger notifies `sources_changed`), when
 * this process changed it, and every 30 s whatever happens, so that several processes agree.
 * Stored secrets are opened with SECRETS_KEY at each load: a missing or wrong key stops the
 * process at start, naming the variable.
 */
@Injectable()
export class SourceDirectory implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SourceDirectory.name);
  private readonly box: SecretBox;
  private bySlugMap = new Map<string, KnownSource>();
  private byIdMap = new Map<number, KnownSource>();
  private unreadableSources: UnreadableSource[] = [];
  private loaded = false;
  private strict = false;
  private loading?: Promise<void>;
  private reloadAgain = false;
  private timer?: NodeJS.Timeout;
  private listener?: Client;
  private listenRetry?: NodeJS.Timeout;
  private closed = false;
  private readonly changeListeners: Array<(sources: ReadonlyMap<number, KnownSource>) => void> = [];

  constructor(
    private readonly repository: SourceRepository,
    private readonly config: AppConfig,
  ) {
    this.box = new SecretBox(config.secretsKey);
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      // At start, a source whose secrets do not open stops the process (one line naming SECRETS_KEY).
      this.strict = true;
      // The process that delivers (it has the write key) writes the default source's destination.
      if (this.config.segmentWriteKeyIfSet !== undefined) {
        await this.repository.syncDefault(presetOfHost(this.config.segmentHost), this.config.segmentHost);
      }
      await this.reload();
    } catch (error) {
      // A wrong or missing SECRETS_KEY stops the process; an unreachable PostgreSQL does not.
      if (!isDatabaseUnavailable(error)) throw error;
      this.logger.warn(`sources not loaded yet, retrying: ${(error as Error).message}`);
    } finally {
      this.strict = false;
    }
    this.timer = setInterval(() => this.reloadQuietly(), SOURCES_RELOAD_INTERVAL_MS);
    this.timer.unref();
    void this.listen();
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.listenRetry);
    await this.listener?.end().catch(() => undefined);
    await this.loading?.catch(() => undefined);
  }

  /** Whether the sources have been read at least once. */
  get ready(): boolean {
    return this.loaded;
  }

  /** A source that is not deleted. */
  bySlug(slug: string): KnownSource | undefined {
    const source = this.bySlugMap.get(slug);
    return source && !source.deleted ? source : undefined;
  }

  /** Any source, deleted ones too (their events stay). */
  byId(id: number): KnownSource | undefined {
    return this.byIdMap.get(id);
  }

  all(): KnownSource[] {
    return [...this.byIdMap.values()];
  }

  /**
   * Sources made after this process started whose secrets it cannot open (another process has
   * another SECRETS_KEY, or this one none): their callbacks answer 503, their jobs wait, and
   * readiness fails, naming them.
   */
  unreadable(): readonly UnreadableSource[] {
    return this.unreadableSources;
  }

  onChange(listener: (sources: ReadonlyMap<number, KnownSource>) => void): void {
    this.changeListeners.push(listener);
  }

  /** Reads the table again now; concurrent calls share one read, and one asked during a read makes another. */
  reload(): Promise<void> {
    if (this.loading) {
      this.reloadAgain = true;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        do {
          this.reloadAgain = false;
          this.apply(await this.repository.all());
        } while (this.reloadAgain);
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  private reloadQuietly(): void {
    this.reload().catch((error: Error) => {
      if (this.closed) return;
      this.logger.error(`sources could not be reloaded, keeping the ones read before: ${error.message}`);
    });
  }

  private apply(rows: SourceRow[]): void {
    const sources: KnownSource[] = [];
    const unreadable: UnreadableSource[] = [];
    for (const row of rows) {
      try {
        sources.push(this.knownSourceOf(row));
      } catch (error) {
        if (this.strict || !(error instanceof SecretsKeyError)) throw error;
        unreadable.push({ id: row.id, slug: row.slug, reason: error.message });
      }
    }
    for (const { reason } of unreadable) this.logger.error(`${reason}; its events wait until this process has the right SECRETS_KEY (restart it with it)`);
    this.unreadableSources = unreadable;
    this.byIdMap = new Map(sources.map((source) => [source.id, source]));
    this.bySlugMap = new Map(sources.map((source) => [source.slug, source]));
    this.loaded = true;
    for (const listener of this.changeListeners) listener(this.byIdMap);
  }

  private knownSourceOf(row: SourceRow): KnownSource {
    const whose = `source "${row.slug}"`;
    const open = (sealed: string | null, purpose: string) => (sealed === null ? undefined : this.box.open(sealed, purpose, whose));
    if (row.id === DEFAULT_SOURCE_ID) {
      const webhook = this.config.webhookCredentialsIfSet;
      const host = this.config.segmentHost;
      return {
        id: row.id,
        slug: row.slug,
        name: row.name,
        paused: row.paused,
        deleted: false,
        destination: { preset: presetOfHost(host), host, writeKey: this.config.segmentWriteKeyIfSet },
        webhook: webhook ? { user: webhook.user, passwords: [{ password: webhook.password, validUntil: null }] } : { user: '', passwords: [] },
        mailjet: this.config.mailjetApi.defaultKeys ?? null,
      };
    }
    const passwords: KnownSource['webhook']['passwords'] = [];
    const current = open(row.webhookPassword, 'webhook_password');
    if (current !== undefined) passwords.push({ password: current, validUntil: null });
    // Sealed as a webhook password: a rotation moves the ciphertext from one column to the other.
    const previous = open(row.previousWebhookPassword, 'webhook_password');
    if (previous !== undefined && row.previousPasswordExpiresAt) {
      passwords.push({ password: previous, validUntil: row.previousPasswordExpiresAt.getTime() });
    }
    const apiSecret = open(row.mailjetApiSecret, 'mailjet_api_secret');
    return {
      id: row.id,
      slug: row.slug,
      name: row.name,
      paused: row.paused,
      deleted: row.deletedAt !== null,
      destination: { preset: row.destinationPreset, host: row.destinationHost, writeKey: open(row.destinationWriteKey, 'destination_write_key') },
      webhook: { user: row.webhookUser, passwords },
      mailjet: row.mailjetApiKey && apiSecret !== undefined ? { apiKey: row.mailjetApiKey, apiSecret } : null,
    };
  }

  /** LISTEN on a connection of its own; when it drops, a reload catches up and it connects again. */
  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new Client({ connectionString: this.config.databaseUrl, connectionTimeoutMillis: 3000 });
    const retry = () => {
      if (this.closed || this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(() => undefined);
      this.listenRetry = setTimeout(() => void this.listen(), LISTEN_RETRY_MS);
      this.listenRetry.unref();
    };
    this.listener = client;
    client.on('error', retry);
    client.on('end', retry);
    client.on('notification', () => this.reloadQuietly());
    try {
      await client.connect();
      await client.query(`listen ${NOTIFY_CHANNEL}`);
      // Changes made while not listening.
      this.reloadQuietly();
    } catch {
      retry();
    }
  }
}
