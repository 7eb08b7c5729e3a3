import { BadRequestException, ConflictException, Injectable, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { randomBytes, randomInt } from 'node:crypto';
import { AppConfig } from '@app/config';
import { EventStatus } from '@app/database';
import {
  DEFAULT_SOURCE_ID,
  DestinationError,
  destinationHostOf,
  DestinationPreset,
  KnownSource,
  SecretBox,
  SecretsKeyMissingError,
  SourceChanges,
  SourceDirectory,
  SourceRepository,
  SourceRow,
} from '@app/sources';
import { MAILJET_WEBHOOK_PATH } from '../mailjet-webhook/mailjet-webhook.controller';
import { OutboxRecoveryService } from '../outbox/outbox-recovery.service';
import { CreateSourceBody, UpdateSourceBody } from './sources.dto';

const SLUG_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const SLUG_LENGTH = 16; // 82 bits: not guessable, short enough to read
const PASSWORD_BYTES = 24; // 192 bits, 32 URL-safe characters
const WEBHOOK_USER = 'mailjet';

/** A source as the admin API shows it: never a secret. */
export interface SourceView {
  id: number;
  slug: string;
  name: string;
  paused: boolean;
  /** `environment` for `default`, whose credentials and destination are set by environment variables. */
  configuredBy: 'environment' | 'admin-api';
  webhook: { url: string; user: string; passwordRotatedAt: string | null; previousPasswordValidUntil: string | null };
  destination: { preset: string; host: string };
  /** Whether the source has Mailjet REST API keys (never the keys themselves). */
  mailjet: { configured: true } | null;
  events: Record<EventStatus, number>;
  createdAt: string;
  updatedAt: string;
}

/** The answer to a creation or a rotation: the only time a webhook password is shown. */
export interface SourceWithPassword {
  id: number;
  slug: string;
  name: string;
  webhook: { url: string; user: string; password: string };
  destination: { preset: string; host: string };
}

function randomSlug(): string {
  return Array.from({ length: SLUG_LENGTH }, () => SLUG_ALPHABET[randomInt(SLUG_ALPHABET.length)]).join('');
}

function hostOf(preset: DestinationPreset, host: string | undefined): string {
  try {
    return destinationHostOf(preset, host);
  } catch (error) {
    if (error instanceof DestinationError) throw new BadRequestException(error.message);
    throw error;
  }
}

/**
 * Sources through the admin API. Secrets are sealed with SECRETS_KEY before they reach the
 * database; after each change the process reloads its cache at once (the others are told by
 * PostgreSQL, and reload every 30 s anyway).
 */
@Injectable()
export class SourceAdminService {
  private readonly box: SecretBox;

  constructor(
    private readonly sources: SourceRepository,
    private readonly directory: SourceDirectory,
    private readonly outbox: OutboxRecoveryService,
    private readonly config: AppConfig,
  ) {
    this.box = new SecretBox(config.secretsKey);
  }

  async create(body: CreateSourceBody, origin: string): Promise<SourceWithPassword> {
    const host = hostOf(body.destination.preset, body.destination.host);
    const password = randomBytes(PASSWORD_BYTES).toString('base64url');
    const row = await this.sealing(() =>
      this.sources.create({
        slug: randomSlug(),
        name: body.name,
        destinationPreset: body.destination.preset,
        destinationHost: host,
        destinationWriteKey: this.box.seal(body.destination.writeKey, 'destination_write_key'),
        mailjetApiKey: body.mailjet?.apiKey ?? null,
        mailjetApiSecret: body.mailjet ? this.box.seal(body.mailjet.apiSecret, 'mailjet_api_secret') : null,
        webhookUser: WEBHOOK_USER,
        webhookPassword: this.box.seal(password, 'webhook_password'),
      }),
    );
    await this.directory.reload();
    return this.withPassword(row, password, origin);
  }

  async list(origin: string): Promise<{ items: SourceView[] }> {
    const counts = await this.sources.countsByStatus();
    const rows = await this.sources.all();
    return { items: rows.filter((row) => row.deletedAt === null).map((row) => this.viewOf(row, counts, origin)) };
  }

  async get(slug: string, origin: string): Promise<SourceView> {
    const row = await this.rowOf(slug);
    return this.viewOf(row, await this.sources.countsByStatus(), origin);
  }

  async update(slug: string, body: UpdateSourceBody, origin: string): Promise<SourceView> {
    const row = await this.rowOf(slug);
    if (row.id === DEFAULT_SOURCE_ID && (body.destination || body.mailjet !== undefined)) {
      throw new ConflictException(
        'the default source is configured by the environment: change SEGMENT_WRITE_KEY and SEGMENT_HOST (or MAILJET_API_KEY and MAILJET_API_SECRET) and restart',
      );
    }
    const changes: SourceChanges = { name: body.name, paused: body.paused };
    if (body.destination) {
      changes.destinationPreset = body.destination.preset;
      changes.destinationHost = hostOf(body.destination.preset, body.destination.host);
      if (body.destination.writeKey !== undefined) {
        changes.destinationWriteKey = this.sealing(() => this.box.seal(body.destination!.writeKey!, 'destination_write_key'));
      }
    }
    if (body.mailjet) {
      changes.mailjetApiKey = body.mailjet.apiKey;
      changes.mailjetApiSecret = this.sealing(() => this.box.seal(body.mailjet!.apiSecret, 'mailjet_api_secret'));
    } else if (body.mailjet === null) {
      changes.mailjetApiKey = null;
      changes.mailjetApiSecret = null;
    }
    const updated = await this.sources.update(row.id, changes);
    if (!updated) throw new NotFoundException(`no source ${slug}`);
    await this.directory.reload();
    // Its parked events go back to the queue now (the outbox loop would within seconds).
    if (row.paused && body.paused === false) await this.outbox.unpark(row.id);
    return this.viewOf(updated, await this.sources.countsByStatus(), origin);
  }

  async delete(slug: string): Promise<void> {
    const row = await this.rowOf(slug);
    if (row.id === DEFAULT_SOURCE_ID) throw new ConflictException('the default source is configured by the environment and cannot be deleted');
    const result = await this.sources.delete(row.id);
    if (result === 'missing') throw new NotFoundException(`no source ${slug}`);
    if (result === 'pending') {
      throw new ConflictException(
        `source ${slug} still has events to forward (received or queued) or a backfill running: let them settle (resume it if it is paused, cancel the backfill with DELETE /admin/backfills/:id), then delete it`,
      );
    }
    await this.directory.reload();
  }

  async rotateWebhookPassword(slug: string, origin: string): Promise<SourceWithPassword & { previousPasswordValidUntil: string }> {
    const row = await this.rowOf(slug);
    if (row.id === DEFAULT_SOURCE_ID) {
      throw new ConflictException('the default source uses MAILJET_WEBHOOK_PASSWORD: change it in the environment and restart');
    }
    const password = randomBytes(PASSWORD_BYTES).toString('base64url');
    const sealed = this.sealing(() => this.box.seal(password, 'webhook_password'));
    const rotated = await this.sources.rotateWebhookPassword(row.id, sealed, this.config.webhookPasswordGraceMs);
    if (!rotated) throw new NotFoundException(`no source ${slug}`);
    await this.directory.reload();
    return { ...this.withPassword(rotated, password, origin), previousPasswordValidUntil: rotated.previousPasswordExpiresAt!.toISOString() };
  }

  /**
   * The id of a source for a filter; deleted sources too, whose events stay. A slug this process
   * does not know yet (made a moment ago through another api) is looked up again once.
   */
  async sourceIdOf(slug: string | undefined): Promise<number | undefined> {
    if (slug === undefined) return undefined;
    const find = () => this.directory.all().find((known: KnownSource) => known.slug === slug);
    if (!find()) {
      try {
        await this.directory.reload();
      } catch (error) {
        throw new ServiceUnavailableException(`the sources cannot be read now: ${(error as Error).message}`);
      }
    }
    const source = find();
    if (!source) throw new BadRequestException(`source: no source ${slug}`);
    return source.id;
  }

  /** Slugs by id, for answers that name each event's source. */
  slugOf(sourceId: number): string {
    return this.directory.byId(sourceId)?.slug ?? String(sourceId);
  }

  private async rowOf(slug: string): Promise<SourceRow> {
    const row = await this.sources.findBySlug(slug);
    if (!row) throw new NotFoundException(`no source ${slug}`);
    return row;
  }

  /** A missing SECRETS_KEY is the operator's to fix, said as such. */
  private sealing<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      if (error instanceof SecretsKeyMissingError) throw new ConflictException(error.message);
      throw error;
    }
  }

  private webhookUrl(row: SourceRow, origin: string): string {
    const base = this.config.publicUrl ?? origin;
    return row.id === DEFAULT_SOURCE_ID ? `${base}${MAILJET_WEBHOOK_PATH}` : `${base}${MAILJET_WEBHOOK_PATH}/${row.slug}`;
  }

  private withPassword(row: SourceRow, password: string, origin: string): SourceWithPassword {
    return {
      id: row.id,
      slug: row.slug,
      name: row.name,
      webhook: { url: this.webhookUrl(row, origin), user: row.webhookUser, password },
      destination: { preset: row.destinationPreset, host: row.destinationHost },
    };
  }

  private viewOf(row: SourceRow, counts: Array<{ sourceId: number; status: string; count: number }>, origin: string): SourceView {
    const events = Object.fromEntries(Object.values(EventStatus).map((status) => [status, 0])) as Record<EventStatus, number>;
    for (const count of counts) if (count.sourceId === row.id) events[count.status as EventStatus] = count.count;
    const isDefault = row.id === DEFAULT_SOURCE_ID;
    const defaultUser = this.config.webhookCredentialsIfSet?.user ?? '';
    const validUntil = row.previousPasswordExpiresAt && row.previousPasswordExpiresAt.getTime() > Date.now() ? row.previousPasswordExpiresAt : null;
    return {
      id: row.id,
      slug: row.slug,
      name: row.name,
      paused: row.paused,
      configuredBy: isDefault ? 'environment' : 'admin-api',
      webhook: {
        url: this.webhookUrl(row, origin),
        user: isDefault ? defaultUser : row.webhookUser,
        passwordRotatedAt: row.passwordRotatedAt?.toISOString() ?? null,
        previousPasswordValidUntil: validUntil?.toISOString() ?? null,
      },
      destination: { preset: row.destinationPreset, host: row.destinationHost },
      mailjet: (isDefault ? this.config.mailjetApi.defaultKeys : row.mailjetApiKey) ? { configured: true } : null,
      events,
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    };
  }
}
