import { Injectable } from '@nestjs/common';
import { MailjetEventRecord } from '@app/mailjet';
import { PrismaService } from './prisma.service';

@Injectable()
export class MailjetEventRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Stores the events of one callback in one statement, usable ones as `received` and junk as
   * `invalid` with its reason, and returns the ids of the usable ones in order.
   */
  async insertReceived(records: readonly MailjetEventRecord[]): Promise<{ queueable: bigint[] }> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint; status: string }>>`
      insert into mailjet_events
        (payload, event_type, event_time, email, message_id, message_guid, dedupe_key, status, last_error)
      select payload, event_type, to_timestamp(event_time), email, message_id, message_guid, dedupe_key,
             case when last_error is null then 'received' else 'invalid' end::event_status, last_error
      from unnest(
        ${records.map((r) => r.rawJson)}::json[],
        ${records.map((r) => r.eventType)}::text[],
        ${records.map((r) => r.time)}::bigint[],
        ${records.map((r) => r.email)}::text[],
        ${records.map((r) => r.messageId)}::text[],
        ${records.map((r) => r.messageGuid)}::text[],
        ${records.map((r) => r.dedupeKey)}::text[],
        ${records.map((r) => r.invalidReason)}::text[]
      ) as e(payload, event_type, event_time, email, message_id, message_guid, dedupe_key, last_error)
      returning id, status::text`;
    return { queueable: rows.filter((row) => row.status === 'received').map((row) => row.id) };
  }

  /** Marks events queued; one that a worker already moved on is left as it is. */
  async markQueued(ids: readonly bigint[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.prisma.$executeRaw`
      update mailjet_events set status = 'queued', queued_at = now(), updated_at = now()
      where id = any(${ids as bigint[]}::bigint[]) and status = 'received'`;
  }

  /** Committed events that never reached the queue (Redis was down, or the process died in between). */
  async findUnqueued(olderThanMs: number, limit: number): Promise<bigint[]> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`
      select id from mailjet_events
      where status = 'received' and received_at < now() - make_interval(secs => ${olderThanMs / 1000}::float8)
      order by id limit ${limit}`;
    return rows.map((row) => row.id);
  }
}
