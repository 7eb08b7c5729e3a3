import { Injectable, Logger } from '@nestjs/common';
import { IngestEventRepository, IngestRecord, isDatabaseUnavailable, jobsOf, StatementBatcher, TransactionRunner } from '@app/database';
import { MAX_EVENTS_PER_JOB } from '@app/queue';
import { EventEnqueuer } from '../outbox/event-enqueuer.service';

// Statements in flight at once (each holds a pool connection); more callbacks wait for the next.
const MAX_IN_FLIGHT = 4;
// Rows in one statement at most; a larger group is split.
const MAX_ROWS = 5000;

/**
 * Group commit: callbacks that arrive while a write is in flight are stored together in one
 * INSERT, and queued together as one job (one per MAX_EVENTS_PER_JOB events), in one transaction. Each callback is still answered
 * only once its own rows are committed. A group that fails for any reason but an unreachable
 * database is written again callback by callback, so that one bad callback cannot fail the others.
 */
@Injectable()
export class GroupCommitWriter {
  private readonly logger = new Logger(GroupCommitWriter.name);
  private readonly groups = new StatementBatcher<readonly IngestRecord[], bigint[]>((callbacks) => this.write(callbacks), {
    maxInFlight: MAX_IN_FLIGHT,
    maxBatch: MAX_ROWS,
    weigh: (records) => records.length,
    retryAlone: (error) => !isDatabaseUnavailable(error),
  });

  constructor(
    private readonly transactions: TransactionRunner,
    private readonly events: IngestEventRepository,
    private readonly enqueuer: EventEnqueuer,
  ) {}

  /** Resolves with the ids of the usable events, in order, once they are committed. */
  store(records: readonly IngestRecord[]): Promise<bigint[]> {
    return this.groups.run(records);
  }

  /**
   * Insert, enqueue, commit. Jobs are added before the commit, so a worker may look for an event
   * a moment before it is visible (it waits), and a rolled back event leaves a job that finds
   * nothing; never a committed event without a job or a `received` status. If Redis refuses the
   * jobs, the events are committed `received` and the recovery loop queues them.
   */
  private async write(callbacks: ReadonlyArray<readonly IngestRecord[]>): Promise<bigint[][]> {
    let queueError: Error | undefined;
    const usableIds = await this.transactions.run(async (tx) => {
      const inserted = await this.events.insert(tx, callbacks.flat(), MAX_EVENTS_PER_JOB);
      let offset = 0;
      const perCallback = callbacks.map((records) => {
        const own = inserted.slice(offset, (offset += records.length));
        return own.filter((event) => event.jobId !== null).map((event) => event.id);
      });
      const ids = perCallback.flat();
      if (ids.length > 0) {
        try {
          await this.enqueuer.addJobs(jobsOf(inserted));
        } catch (error) {
          queueError = error as Error;
          await this.events.markReceived(tx, ids);
        }
      }
      return perCallback;
    });
    if (queueError) {
      this.logger.warn(
        `${usableIds.flat().length} event(s) stored as received, the recovery loop will queue them: ${queueError.message}`,
      );
    }
    return usableIds;
  }
}
