import { Injectable } from '@nestjs/common';
import { MailjetEventRecord } from '@app/mailjet';
import { EventStatus } from './generated/prisma/enums';
import { PrismaService } from './prisma.service';

/** What the worker reads of a stored event. */
export interface StoredMailjetEvent {
  id: bigint;
  /** The raw JSON text, exactly as received. */
  payload: string;
  eventType: string;
  status: EventStatus;
  email: string | null;
  messageId: string | null;
  eventTime: number | null;
  dedupeKey: string | null;
  attempts: number;
}

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

  async findForForwarding(id: bigint): Promise<StoredMailjetEvent | null> {
    const [row] = await this.prisma.$queryRaw<StoredMailjetEvent[]>`
      select id, payload::text as payload, event_type as "eventType", status, email, message_id as "messageId",
             extract(epoch from event_time)::float8 as "eventTime", dedupe_key as "dedupeKey", attempts
      from mailjet_events where id = ${id}`;
    return row ?? null;
  }

  /**
   * Claims a dedupe key for an event and returns the event that owns it: this one, or the one that
   * claimed it first. The primary key of dedupe_keys decides between concurrent claims.
   */
  async claimDedupeKey(dedupeKey: string, eventId: bigint): Promise<bigint> {
    const inserted = await this.prisma.$queryRaw<Array<{ eventId: bigint }>>`
      insert into dedupe_keys (dedupe_key, event_id) values (${dedupeKey}, ${eventId})
      on conflict (dedupe_key) do nothing returning event_id as "eventId"`;
    if (inserted.length > 0) return inserted[0].eventId;
    // A separate statement: its snapshot sees the claim that made ours conflict.
    const [owner] = await this.prisma.$queryRaw<Array<{ eventId: bigint }>>`
      select event_id as "eventId" from dedupe_keys where dedupe_key = ${dedupeKey}`;
    return owner.eventId;
  }

  async markForwarded(id: bigint, segmentMessageId: string): Promise<void> {
    await this.prisma.$executeRaw`
      update mailjet_events
      set status = 'forwarded', attempts = attempts + 1, forwarded_at = now(), last_error = null,
          segment_message_id = ${segmentMessageId}, updated_at = now()
      where id = ${id}`;
  }

  async markDuplicate(id: bigint, ownerId: bigint): Promise<void> {
    await this.prisma.$executeRaw`
      update mailjet_events set status = 'duplicate', duplicate_of = ${ownerId}, updated_at = now()
      where id = ${id}`;
  }

  /** Counts a failed attempt with its reason; `final` when no attempt will follow. */
  async recordFailedAttempt(id: bigint, reason: string, final: boolean): Promise<void> {
    await this.prisma.$executeRaw`
      update mailjet_events
      set attempts = attempts + 1, last_error = ${reason}, updated_at = now(),
          status = (case when ${final} then 'failed' else 'queued' end)::event_status
      where id = ${id}`;
  }
}
