import { BadRequestException, ConflictException, Injectable, Logger, NotFoundException, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { withTimeout } from '@app/common';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { AppConfig } from '@app/config';
import { BackfillRepository, BackfillRow, IngestEventRepository, IngestRecord, isDatabaseUnavailable, jobsOf, TransactionRunner } from '@app/database';
import { parseMailjetBody, toEventRecord } from '@app/mailjet';
import { ClickStatisticsRow, eventsOfHistory, knownEvents, MailjetApiError, MailjetMessage, MessageHistoryRow } from '@app/mailjet-api';
import { MAX_EVENTS_PER_JOB } from '@app/queue';
import { scopedDedupeKey, SourceDirectory } from '@app/sources';
import { EventEnqueuer } from '../outbox/event-enqueuer.service';
import { MailjetAccount, MailjetAccounts } from './mailjet-accounts.service';

// A running backfill renews its lease this often; a lease not renewed for LEASE_MS is taken over.
const HEARTBEAT_MS = 3_000;
const LEASE_MS = 10_000;
// How often an api looks for a backfill to run (one at a time per process).
const POLL_MS = 2_000;
// Messages read from Mailjet and recorded together: a page of progress, stored in one transaction.
const MESSAGES_PER_STEP = 100;
// Histories read at once.
const HISTORY_CONCURRENCY = 4;
// A stopping api waits this long for the step under way, then lets go of the backfill.
const SHUTDOWN_WAIT_MS = 5_000;
const DAY_MS = 24 * 60 * 60 * 1000;
// Mailjet did not exist before; an earlier `from` is a typo (1970, 1900).
const EARLIEST_WINDOW_START = Date.UTC(2000, 0, 1);
const MAX_CLOCK_SKEW_MS = 60_000;

/** A backfill as the admin API answers it. */
export interface BackfillView {
  id: string;
  source: string;
  from: string;
  to: string;
  status: BackfillRow['status'];
  messagesTotal: number | null;
  messagesScanned: number;
  eventsFound: number;
  eventsNew: number;
  eventsKnown: number;
  error?: string;
}

class BackfillStopped extends Error {}

/**
 * Backfills (SPEC section 9): the events of the messages Mailjet lists in a window, read from
 * their histories, stored through the same insert and queue as webhook events (`origin` =
 * backfill), except those already stored. Progress is recorded per step of MESSAGES_PER_STEP
 * messages, in the transaction that stores its events, so that a backfill that stops (a restart,
 * a crash) resumes from the last step, and its counts come out the same.
 */
@Injectable()
export class MailjetBackfills implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(MailjetBackfills.name);
  /** This process, as the holder of a backfill's lease. */
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** The id of the backfill this process runs, if any. */
  private current?: string;
  private stopping = false;

  constructor(
    private readonly backfills: BackfillRepository,
    private readonly events: IngestEventRepository,
    private readonly transactions: TransactionRunner,
    private readonly enqueuer: EventEnqueuer,
    private readonly accounts: MailjetAccounts,
    private readonly sources: SourceDirectory,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.runNext(), POLL_MS);
    this.timer.unref();
  }

  /**
   * A stopping api lets go of its backfill: the histories being read are dropped (their step is not
   * recorded) and the lease released, so that another api goes on at once from the last step.
   */
  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    const current = this.current;
    try {
      await withTimeout(this.running ?? Promise.resolve(), SHUTDOWN_WAIT_MS, 'the running backfill');
    } catch {
      // Still reading Mailjet: its step will not be recorded once the lease is gone.
      if (current) await this.backfills.release(current, this.owner).catch(() => undefined);
    }
  }

  /**
   * Whole seconds (Mailjet's times are): `from` rounded down and `to` up, so that no message of the
   * window asked for is left out. A window of the same source that overlaps a running one is
   * refused: both would count the same events as new.
   */
  async start(slug: string, from: Date, to: Date): Promise<{ id: string }> {
    const start = new Date(Math.floor(from.getTime() / 1000) * 1000);
    const end = new Date(Math.ceil(to.getTime() / 1000) * 1000);
    if (!(start < end)) throw new BadRequestException('from must be before to');
    if (start.getTime() < EARLIEST_WINDOW_START) throw new BadRequestException('from must be in 2000 or later');
    if (end.getTime() > Date.now() + MAX_CLOCK_SKEW_MS) throw new BadRequestException('to must not be in the future');
    // Past the retention, stored events go with their dedupe keys: a backfill would find them all new and send them again.
    const retentionDays = this.config.eventRetentionDays;
    if (retentionDays !== undefined && start.getTime() < Date.now() - retentionDays * DAY_MS) {
      throw new BadRequestException(
        `from must be within the last ${retentionDays} days (EVENT_RETENTION_DAYS): older events are dropped with their dedupe keys, so a backfill would forward them again`,
      );
    }
    const { source } = this.accounts.of(slug);
    const backfill = await this.backfills.create(source.id, start, end);
    if (!backfill) {
      throw new ConflictException(`a backfill of source ${slug} that overlaps this window is running: wait for it, or cancel it (DELETE /admin/backfills/:id)`);
    }
    this.runNext();
    return { id: backfill.id };
  }

  async get(id: bigint): Promise<BackfillView> {
    const backfill = await this.backfills.find(id);
    if (!backfill) throw new NotFoundException(`no backfill ${id}`);
    return this.viewOf(backfill);
  }

  async cancel(id: bigint): Promise<BackfillView> {
    const before = await this.backfills.find(id);
    if (!before) throw new NotFoundException(`no backfill ${id}`);
    if (before.status !== 'running') throw new ConflictException(`backfill ${id} is ${before.status} already: nothing to cancel`);
    const backfill = await this.backfills.cancel(id);
    return this.viewOf(backfill!);
  }

  private viewOf(backfill: BackfillRow): BackfillView {
    return {
      id: backfill.id,
      source: this.sources.byId(backfill.sourceId)?.slug ?? String(backfill.sourceId),
      from: backfill.from.toISOString(),
      to: backfill.to.toISOString(),
      status: backfill.status,
      messagesTotal: backfill.messagesTotal,
      messagesScanned: backfill.messagesScanned,
      eventsFound: backfill.eventsFound,
      eventsNew: backfill.eventsNew,
      eventsKnown: backfill.eventsKnown,
      ...(backfill.error ? { error: backfill.error } : {}),
    };
  }

  /** Takes a backfill that nobody runs, if this process runs none. */
  private runNext(): void {
    if (this.running || this.stopping) return;
    this.running = (async () => {
      try {
        const backfill = await this.backfills.takeLease(this.owner, LEASE_MS);
        if (backfill) {
          this.current = backfill.id;
          await this.run(backfill);
        }
      } catch (error) {
        if (!isDatabaseUnavailable(error)) this.logger.error(`backfill runner: ${(error as Error).message}`);
      } finally {
        this.running = undefined;
        this.current = undefined;
      }
    })();
  }

  private async run(backfill: BackfillRow): Promise<void> {
    const source = this.sources.byId(backfill.sourceId);
    const account = source && !source.deleted ? this.accounts.ofSource(source) : undefined;
    if (!account) {
      await this.backfills.finish(backfill.id, this.owner, 'failed', 'the source was deleted, or has no Mailjet API keys any more');
      return;
    }
    this.logger.log(`backfill ${backfill.id} of source ${account.source.slug}: from message ${backfill.messagesScanned}`);
    let lost = false;
    const heartbeat = setInterval(() => {
      this.backfills
        .renewLease(backfill.id, this.owner, LEASE_MS)
        .then((held) => (lost ||= !held))
        .catch(() => undefined);
    }, HEARTBEAT_MS);
    try {
      await this.scan(backfill, account, () => lost || this.stopping);
      await this.backfills.finish(backfill.id, this.owner, 'done');
      this.logger.log(`backfill ${backfill.id} done`);
    } catch (error) {
      if (error instanceof BackfillStopped || isDatabaseUnavailable(error) || this.stopping) {
        // Cancelled, or this process stops or lost PostgreSQL: another run continues from the last step.
        await this.backfills.release(backfill.id, this.owner).catch(() => undefined);
        return;
      }
      const reason = error instanceof MailjetApiError ? error.message : `backfill stopped: ${(error as Error).message}`;
      this.logger.warn(`backfill ${backfill.id} failed: ${reason}`);
      await this.backfills.finish(backfill.id, this.owner, 'failed', reason);
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** A message's history; none when Mailjet no longer has the message (404), which is not worth failing the backfill for. */
  private async historyOf(account: MailjetAccount, message: MailjetMessage): Promise<MessageHistoryRow[]> {
    try {
      return await account.client.listAll<MessageHistoryRow>(`messagehistory/${message.ID}`);
    } catch (error) {
      if (error instanceof MailjetApiError && error.status === 404) return [];
      throw error;
    }
  }

  /** Reads the window's messages from where the backfill stopped, a step at a time. */
  private async scan(backfill: BackfillRow, account: MailjetAccount, stop: () => boolean): Promise<void> {
    const from = Math.floor(backfill.from.getTime() / 1000);
    const to = Math.floor(backfill.to.getTime() / 1000);
    // FromTS is taken as exclusive (docs/MAILJET.md): one second earlier, and the rows filtered here.
    const query = { FromTS: from - 1, ToTS: to, ShowContactAlt: true, ShowCustomID: true, Offset: backfill.messagesScanned };
    if (backfill.messagesTotal === null) {
      const { Offset: _, ...window } = query;
      await this.backfills.recordTotal(backfill.id, this.owner, await account.client.total('message', window));
    }
    for await (const page of account.client.pages<MailjetMessage>('message', query)) {
      for (let i = 0; i < page.length; i += MESSAGES_PER_STEP) {
        if (stop()) throw new BackfillStopped();
        const messages = page.slice(i, i + MESSAGES_PER_STEP);
        const inWindow = messages.filter((message) => {
          const arrived = Date.parse(message.ArrivedAt) / 1000;
          return arrived >= from && arrived < to;
        });
        await this.step(backfill, account, messages.length, inWindow, stop);
      }
    }
  }

  /** One step: the histories of `messages`, their new events stored and the progress recorded, in one transaction. */
  private async step(
    backfill: BackfillRow,
    account: MailjetAccount,
    scanned: number,
    messages: MailjetMessage[],
    stop: () => boolean,
  ): Promise<void> {
    const { source } = account;
    const found: Array<ReturnType<typeof eventsOfHistory>> = await mapLimited(messages, HISTORY_CONCURRENCY, async (message) => {
      if (stop()) throw new BackfillStopped();
      const history = await this.historyOf(account, message);
      const clicks = history.some((row) => row.EventType === 'clicked')
        ? await account.client.listAll<ClickStatisticsRow>('clickstatistics', {
            MessageID: message.ID,
            FromTS: Math.floor(Date.parse(message.ArrivedAt) / 1000) - 1,
            ToTS: Math.floor(Date.now() / 1000),
          })
        : [];
      return eventsOfHistory(message, history, clicks);
    });
    // Events that could not be forwarded (a message without a recipient address) are left out:
    // storing them would add an `invalid` row at every run, and count them as new.
    const candidates = found.flat().filter(({ json }) => toEventRecord(parseMailjetBody(json)[0]).invalidReason === null);
    const stored = await this.backfills.storedEventsOf(source.id, [...new Set(candidates.map((c) => c.event.messageId))]);
    const known = knownEvents(candidates.map((c) => c.event), stored, this.config.mailjetApi.backfillToleranceSeconds);
    const records: IngestRecord[] = candidates
      .filter((_, index) => !known[index])
      .map(({ json }) => {
        const record = toEventRecord(parseMailjetBody(json)[0]);
        return { ...record, sourceId: source.id, dedupeKey: scopedDedupeKey(source, record.dedupeKey), origin: 'backfill' };
      });
    const progress = { messagesScanned: scanned, eventsFound: candidates.length, eventsNew: records.length, eventsKnown: candidates.length - records.length };
    let queueError: Error | undefined;
    const recorded = await this.transactions.run(async (tx) => {
      // First: the row lock orders this step after a cancel, and nothing is stored once cancelled.
      if (!(await this.backfills.recordStep(tx, backfill.id, this.owner, LEASE_MS, progress))) return false;
      if (records.length === 0) return true;
      const inserted = await this.events.insert(tx, records, MAX_EVENTS_PER_JOB);
      try {
        await this.enqueuer.addJobs(jobsOf(inserted));
      } catch (error) {
        queueError = error as Error;
        await this.events.markReceived(tx, inserted.filter((event) => event.jobId !== null).map((event) => event.id));
      }
      return true;
    });
    if (queueError) this.logger.warn(`backfill ${backfill.id}: events stored as received, the recovery loop queues them: ${queueError.message}`);
    if (!recorded) throw new BackfillStopped();
  }
}

/** `work` over `items`, at most `limit` at a time, results in order; the first failure stops the others' next items. */
async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]);
      }
    }),
  );
  return results;
}
