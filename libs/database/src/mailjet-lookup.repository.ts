import { Injectable } from '@nestjs/common';
import { PrismaService } from './prisma.service';

export type LookupKind = 'subject' | 'list';

/** A name looked up in Mailjet; `value` null when Mailjet has none (kept too, so that it is asked once). */
export interface Lookup {
  kind: LookupKind;
  key: string;
  value: string | null;
}

/** The cache of enrichment lookups (a message's subject, a list's name): read by the worker on every job that enriches. */
@Injectable()
export class MailjetLookupRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * The cached lookups among `wanted`. A "Mailjet has none" is trusted for an hour only: Mailjet's
   * message data can lag behind its webhook by hours, so a subject not found yet is asked again.
   */
  async find(wanted: ReadonlyArray<{ kind: LookupKind; key: string }>): Promise<Lookup[]> {
    if (wanted.length === 0) return [];
    const { rows } = await this.prisma.pool.query<Lookup>(
      `select kind, key, value from mailjet_lookups l
       join unnest($1::text[], $2::text[]) as w(kind, key) using (kind, key)
       where value is not null or fetched_at > now() - interval '1 hour'`,
      [wanted.map((w) => w.kind), wanted.map((w) => w.key)],
    );
    return rows;
  }

  async save(lookup: Lookup): Promise<void> {
    await this.prisma.pool.query(
      `insert into mailjet_lookups (kind, key, value) values ($1, $2, $3)
       on conflict (kind, key) do update set value = excluded.value, fetched_at = now()`,
      [lookup.kind, lookup.key, lookup.value],
    );
  }
}
