import { Injectable } from '@nestjs/common';
import { PrismaService } from '@app/database';

/** The id of the environment-configured source, created by the migration that adds sources. */
export const DEFAULT_SOURCE_ID = 1;
export const DEFAULT_SOURCE_SLUG = 'default';

/** A `sources` row as stored: secrets are sealed (SecretBox), null for the default source. */
export interface SourceRow {
  id: number;
  slug: string;
  name: string;
  paused: boolean;
  destinationPreset: string;
  destinationHost: string;
  destinationWriteKey: string | null;
  mailjetApiKey: string | null;
  mailjetApiSecret: string | null;
  webhookUser: string;
  webhookPassword: string | null;
  previousWebhookPassword: string | null;
  previousPasswordExpiresAt: Date | null;
  passwordRotatedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}

export type NewSourceRow = Pick<
  SourceRow,
  'slug' | 'name' | 'destinationPreset' | 'destinationHost' | 'destinationWriteKey' | 'mailjetApiKey' | 'mailjetApiSecret' | 'webhookUser' | 'webhookPassword'
>;

export type SourceChanges = Partial<
  Pick<SourceRow, 'name' | 'paused' | 'destinationPreset' | 'destinationHost' | 'destinationWriteKey' | 'mailjetApiKey' | 'mailjetApiSecret'>
>;

const COLUMNS = `
  id, slug, name, paused, destination_preset as "destinationPreset", destination_host as "destinationHost",
  destination_write_key as "destinationWriteKey", mailjet_api_key as "mailjetApiKey", mailjet_api_secret as "mailjetApiSecret",
  webhook_user as "webhookUser", webhook_password as "webhookPassword", previous_webhook_password as "previousWebhookPassword",
  previous_password_expires_at as "previousPasswordExpiresAt", password_rotated_at as "passwordRotatedAt",
  created_at as "createdAt", updated_at as "updatedAt", deleted_at as "deletedAt"`;

const COLUMN_OF: Record<keyof SourceChanges, string> = {
  name: 'name',
  paused: 'paused',
  destinationPreset: 'destination_preset',
  destinationHost: 'destination_host',
  destinationWriteKey: 'destination_write_key',
  mailjetApiKey: 'mailjet_api_key',
  mailjetApiSecret: 'mailjet_api_secret',
};

/**
 * The sources table. Every process reads it whole (a few rows) into its SourceDirectory; only the
 * admin API writes it. Statements go to the pool: the worker reads sources too, without Prisma.
 */
@Injectable()
export class SourceRepository {
  constructor(private readonly prisma: PrismaService) {}

  async all(): Promise<SourceRow[]> {
    const { rows } = await this.prisma.pool.query<SourceRow>(`select ${COLUMNS} from sources order by id`);
    return rows;
  }

  async findBySlug(slug: string): Promise<SourceRow | null> {
    const { rows } = await this.prisma.pool.query<SourceRow>(`select ${COLUMNS} from sources where slug = $1 and deleted_at is null`, [slug]);
    return rows[0] ?? null;
  }

  async create(row: NewSourceRow): Promise<SourceRow> {
    const { rows } = await this.prisma.pool.query<SourceRow>(
      `insert into sources (slug, name, destination_preset, destination_host, destination_write_key, mailjet_api_key,
                            mailjet_api_secret, webhook_user, webhook_password)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning ${COLUMNS}`,
      [
        row.slug,
        row.name,
        row.destinationPreset,
        row.destinationHost,
        row.destinationWriteKey,
        row.mailjetApiKey,
        row.mailjetApiSecret,
        row.webhookUser,
        row.webhookPassword,
      ],
    );
    return rows[0];
  }

  /** Applies the changes to a source that is not deleted; null if there is none. */
  async update(id: number, changes: SourceChanges): Promise<SourceRow | null> {
    const entries = (Object.keys(changes) as Array<keyof SourceChanges>).filter((key) => changes[key] !== undefined);
    const sets = entries.map((key, index) => `${COLUMN_OF[key]} = $${index + 2}`);
    const { rows } = await this.prisma.pool.query<SourceRow>(
      `update sources set ${[...sets, 'updated_at = now()'].join(', ')} where id = $1 and deleted_at is null returning ${COLUMNS}`,
      [id, ...entries.map((key) => changes[key])],
    );
    return rows[0] ?? null;
  }

  /** The current password becomes the previous one, valid for `graceMs` more; null if the source is gone. */
  async rotateWebhookPassword(id: number, sealedPassword: string, graceMs: number): Promise<SourceRow | null> {
    const { rows } = await this.prisma.pool.query<SourceRow>(
      `update sources set previous_webhook_password = webhook_password,
              previous_password_expires_at = now() + make_interval(secs => $3::float8 / 1000),
              webhook_password = $2, password_rotated_at = now(), updated_at = now()
       where id = $1 and deleted_at is null returning ${COLUMNS}`,
      [id, sealedPassword, graceMs],
    );
    return rows[0] ?? null;
  }

  /**
   * Marks the source deleted and forgets its secrets, unless it still has events to forward
   * (`received` or `queued`) or a backfill running (whose next step would store more): answers
   * 'deleted', 'pending' or 'missing'.
   */
  async delete(id: number): Promise<'deleted' | 'pending' | 'missing'> {
    const { rows } = await this.prisma.pool.query<{ deleted: boolean; pending: boolean }>(
      `with pending as (
         select exists (select 1 from mailjet_events where status in ('received', 'queued') and source_id = $1)
             or exists (select 1 from backfills where status = 'running' and source_id = $1) as pending
       ), deleted as (
         update sources set deleted_at = now(), updated_at = now(), paused = false, destination_write_key = null,
                mailjet_api_secret = null, webhook_password = null, previous_webhook_password = null,
                previous_password_expires_at = null
         where id = $1 and deleted_at is null and not (select pending from pending)
         returning id
       )
       select exists (select 1 from deleted) as deleted, (select pending from pending) as pending`,
      [id],
    );
    const [{ deleted, pending }] = rows;
    return deleted ? 'deleted' : pending ? 'pending' : 'missing';
  }

  /** The default source's row follows the environment's SEGMENT_HOST; written only when it changed. */
  async syncDefault(preset: string, host: string): Promise<void> {
    await this.prisma.pool.query(
      `update sources set destination_preset = $2, destination_host = $3, updated_at = now()
       where id = $1 and (destination_preset, destination_host) is distinct from ($2, $3)`,
      [DEFAULT_SOURCE_ID, preset, host],
    );
  }

  /** Counts by status per source, from the maintained counters. */
  async countsByStatus(): Promise<Array<{ sourceId: number; status: string; count: number }>> {
    await this.prisma.pool.query('select fold_event_counts()');
    const { rows } = await this.prisma.pool.query<{ sourceId: number; status: string; count: number }>(
      `select source_id as "sourceId", status::text as status, sum(count)::float8 as count
       from event_counts where count <> 0 group by 1, 2 order by 1, 2`,
    );
    return rows;
  }
}
