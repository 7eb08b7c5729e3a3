import { Injectable, Logger } from '@nestjs/common';
import { isDatabaseUnavailable, MailjetEventRepository } from '@app/database';
import { MailjetEventRecord } from '@app/mailjet';
import { EventEnqueuer } from '../outbox/event-enqueuer.service';

interface PendingWrite {
  records: readonly MailjetEventRecord[];
  resolve: (queueable: bigint[]) => void;
  reject: (error: unknown) => void;
}

// Statements in flight at once (each holds a pool connection); more callbacks wait for the next.
const MAX_IN_FLIGHT = 4;
// Rows in one statement at most; a larger group is split.
const MAX_ROWS = 5000;

/**
 * Group commit: callbacks that arrive while a write is in flight are stored together in one
 * INSERT, and queued together in one addBulk, in one transaction. Each callback is still answered
 * only once its own rows are committed. A group that fails for any reason but an unreachable database is written
 * again callback by callback, so that one bad callback cannot fail the others.
 */
@Injectable()
export class GroupCommitWriter {
  private readonly logger = new Logger(GroupCommitWriter.name);
  private pending: PendingWrite[] = [];
  private inFlight = 0;

  constructor(
    private readonly events: MailjetEventRepository,
    private readonly enqueuer: EventEnqueuer,
  ) {}

  /** Resolves with the ids of the usable events, in order, once they are committed. */
  store(records: readonly MailjetEventRecord[]): Promise<bigint[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ records, resolve, reject });
      this.flush();
    });
  }

  private flush(): void {
    while (this.pending.length > 0 && this.inFlight < MAX_IN_FLIGHT) {
      const group = this.takeGroup();
      this.inFlight++;
      void this.write(group).finally(() => {
        this.inFlight--;
        this.flush();
      });
    }
  }

  private takeGroup(): PendingWrite[] {
    let rows = 0;
    let count = 0;
    while (count < this.pending.length && (count === 0 || rows + this.pending[count].records.length <= MAX_ROWS)) {
      rows += this.pending[count].records.length;
      count++;
    }
    return this.pending.splice(0, count);
  }

  private async write(group: PendingWrite[]): Promise<void> {
    let queueable: bigint[][];
    let queueError: Error | undefined;
    try {
      ({ queueable, queueError } = await this.events.insertAndQueue(
        group.map((write) => write.records),
        (ids) => this.enqueuer.addJobs(ids),
      ));
    } catch (error) {
      if (group.length === 1 || isDatabaseUnavailable(error)) {
        for (const write of group) write.reject(error);
        return;
      }
      await Promise.all(group.map((write) => this.write([write])));
      return;
    }
    group.forEach((write, index) => write.resolve(queueable[index]));
    if (queueError) {
      this.logger.warn(
        `${queueable.flat().length} event(s) stored as received, the recovery loop will queue them: ${queueError.message}`,
      );
    }
  }
}
