import { Injectable } from '@nestjs/common';
import { PrismaService } from './prisma.service';

// One row (id 1, made by the migration). A row is returned only when the key changed: with the key
// it replaced, read before the statement (null when the row was missing).
const WRITE_USER_ID_PAYLOAD_KEY = `
  with previous as (select user_id_payload_key from analyst_view_settings where id = 1)
  insert into analyst_view_settings (id, user_id_payload_key) values (1, $1)
  on conflict (id) do update set user_id_payload_key = excluded.user_id_payload_key, updated_at = now()
    where analyst_view_settings.user_id_payload_key <> excluded.user_id_payload_key
  returning (select user_id_payload_key from previous) as previous`;

/**
 * The configuration that the analysts' views (schema `mailjet`) read from the database, because a
 * view cannot read the environment. Through the pool: the worker writes it too, and never loads
 * Prisma's query engine.
 */
@Injectable()
export class AnalystViewSettingsRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Stores USER_ID_PAYLOAD_KEY; answers whether it changed, and from what. */
  async writeUserIdPayloadKey(key: string): Promise<{ changed: false } | { changed: true; previous: string | null }> {
    const { rows } = await this.prisma.pool.query<{ previous: string | null }>(WRITE_USER_ID_PAYLOAD_KEY, [key]);
    return rows.length === 0 ? { changed: false } : { changed: true, previous: rows[0].previous };
  }

  async userIdPayloadKey(): Promise<string | null> {
    const { rows } = await this.prisma.pool.query<{ key: string }>(`select user_id_payload_key as key from analyst_view_settings where id = 1`);
    return rows[0]?.key ?? null;
  }
}
