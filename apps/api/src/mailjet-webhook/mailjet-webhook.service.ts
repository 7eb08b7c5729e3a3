import { BadRequestException, Injectable, InternalServerErrorException, Logger, ServiceUnavailableException } from '@nestjs/common';
import { isDatabaseUnavailable } from '@app/database';
import { MailjetBodyError, parseMailjetBody, toEventRecord } from '@app/mailjet';
import { BridgeMetrics, typeLabel } from '@app/metrics';
import { scopedDedupeKey } from '@app/sources';
import { GroupCommitWriter } from './group-commit.service';

export interface IngestResult {
  received: number;
  accepted: number;
  invalid: number;
}

@Injectable()
export class MailjetWebhookService {
  private readonly logger = new Logger(MailjetWebhookService.name);

  constructor(
    private readonly writer: GroupCommitWriter,
    private readonly metrics: BridgeMetrics,
  ) {}

  /**
   * Stores every event of a callback body (with those of concurrent callbacks, in one statement)
   * and answers only once it is committed; queueing follows and cannot lose a committed event
   * (the row is the outbox).
   */
  async ingest(body: string, source: { id: number; slug: string }): Promise<IngestResult> {
    let records;
    try {
      records = parseMailjetBody(body).map((event) => {
        const record = toEventRecord(event);
        return { ...record, sourceId: source.id, dedupeKey: scopedDedupeKey(source, record.dedupeKey) };
      });
    } catch (error) {
      if (error instanceof MailjetBodyError) throw new BadRequestException(error.message);
      throw error;
    }
    let queueable: bigint[];
    try {
      queueable = await this.writer.store(records);
    } catch (error) {
      const reason = (error as Error).message.trim().split('\n').at(-1);
      if (isDatabaseUnavailable(error)) {
        this.logger.error(`could not store ${records.length} event(s), answering 503: ${reason}`);
        throw new ServiceUnavailableException('the event store is unavailable; nothing was stored, retry later');
      }
      // PostgreSQL refused what it was given: a bug of ours, not an outage. Mailjet retries a 500
      // too, and the log says why (never the payload).
      this.logger.error(`PostgreSQL refused ${records.length} event(s), answering 500: ${reason}`);
      throw new InternalServerErrorException('the events could not be stored; nothing was stored, the reason is in the api log');
    }
    this.count(source.slug, records);
    return { received: records.length, accepted: queueable.length, invalid: records.length - queueable.length };
  }

  /** msb_events_received_total, once per (type, outcome) of the callback. */
  private count(source: string, records: ReadonlyArray<{ eventType: string; invalidReason: string | null }>): void {
    const counts = new Map<string, number>();
    for (const record of records) {
      const key = `${typeLabel(record.eventType)} ${record.invalidReason === null ? 'accepted' : 'invalid'}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const [key, count] of counts) {
      const [type, outcome] = key.split(' ');
      this.metrics.eventsReceived.inc({ source, type, outcome }, count);
    }
  }
}
