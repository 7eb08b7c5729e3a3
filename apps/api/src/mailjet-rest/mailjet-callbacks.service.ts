import { ConflictException, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { MAILJET_EVENT_TYPES, MailjetEventType } from '@app/mailjet';
import { EventCallbackUrl, MailjetApiError } from '@app/mailjet-api';
import { BridgeMetrics } from '@app/metrics';
import { DEFAULT_SOURCE_SLUG } from '@app/sources';
import { MAILJET_WEBHOOK_PATH } from '../mailjet-webhook/mailjet-webhook.controller';
import { MailjetAccount, MailjetAccounts } from './mailjet-accounts.service';

const RESOURCE = 'eventcallbackurl';
/** Grouped events: one POST with an array, at most once a second. */
const GROUPED = 2;
const FIRST_CHECK_AFTER_MS = 30_000;
/** The query parameter that changes a suspended callback's URL, which is what revives it; the callback ignores it. */
const REARM_PARAMETER = 'rearm';

export type CallbackAction = 'created' | 'updated' | 'unchanged' | 'conflict';

export interface CallbackOutcome {
  eventType: MailjetEventType;
  action: CallbackAction;
  status: 'alive' | 'dead';
  /** For a conflict: where the row points now (credentials masked). */
  url?: string;
}

/** A callback row as `GET .../mailjet/callbacks` shows it: the password in its URL masked. */
export interface CallbackRow {
  id: string;
  eventType: string;
  url: string;
  status: string;
  version: number;
  isBackup: boolean;
  /** Whether it points at this source's callback URL. */
  ours: boolean;
}

/** What the periodic check last found for a source. */
export interface CallbackCheck {
  source: string;
  checkedAt: string;
  /** Event types whose callback to us Mailjet suspended. */
  dead: MailjetEventType[];
  /** Event types with no callback to us. */
  missing: MailjetEventType[];
  error?: string;
}

/** A URL with the password of its credentials, and the values of its query (tokens, keys), replaced by `***`. */
export function maskedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const name of [...parsed.searchParams.keys()]) {
      if (name !== REARM_PARAMETER) parsed.searchParams.set(name, '***');
    }
    return parsed.toString().replaceAll('%2A%2A%2A', '***');
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@').replace(/\?.*$/, '?***');
  }
}

/** Where a URL leads, without its credentials and its re-arm parameter: what makes a callback ours. */
function destinationOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.searchParams.delete(REARM_PARAMETER);
    parsed.hash = '';
    return parsed.toString();
  } catch {
    return undefined;
  }
}

function credentialsOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  } catch {
    return undefined;
  }
}

/**
 * Mailjet's event callbacks as desired state (SPEC section 9): for each of the seven event types,
 * a primary callback to the source's URL, with its Basic credentials, grouped (Version 2), alive.
 * `ensure` makes it so and changes nothing when it is; a callback that points elsewhere is a
 * conflict, left alone unless `replace`. The api also checks every MAILJET_CALLBACK_CHECK_MINUTES
 * for suspended (dead) callbacks, which `GET /admin/status` reports and `ensure` re-arms.
 */
@Injectable()
export class MailjetCallbacks implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(MailjetCallbacks.name);
  private readonly checks = new Map<string, CallbackCheck>();
  private timer?: NodeJS.Timeout;
  private firstCheck?: NodeJS.Timeout;
  private checking?: Promise<void>;

  constructor(
    private readonly accounts: MailjetAccounts,
    private readonly config: AppConfig,
    private readonly metrics: BridgeMetrics,
  ) {}

  onApplicationBootstrap(): void {
    // The first check soon after start, so that a suspended callback shows without waiting a whole interval.
    this.firstCheck = setTimeout(() => void this.checkAll(), FIRST_CHECK_AFTER_MS);
    this.firstCheck.unref();
    this.timer = setInterval(() => void this.checkAll(), this.config.mailjetApi.callbackCheckMs);
    this.timer.unref();
    this.metrics.sharedGauge(
      'msb_mailjet_callback_up',
      "Whether Mailjet's callback of each event type to this source is alive (1), or suspended or missing (0), as last checked",
      ['source', 'type'],
      async () =>
        this.lastChecks()
          .filter((check) => check.error === undefined)
          .flatMap((check) =>
            MAILJET_EVENT_TYPES.map((type) => ({
              labels: { source: check.source, type },
              value: check.dead.includes(type) || check.missing.includes(type) ? 0 : 1,
            })),
          ),
    );
  }

  async onModuleDestroy(): Promise<void> {
    clearTimeout(this.firstCheck);
    clearInterval(this.timer);
    await this.checking;
  }

  /** What the last checks found, per source that has Mailjet keys now. */
  lastChecks(): CallbackCheck[] {
    const current = new Set(this.accounts.all().map((account) => account.source.slug));
    return [...this.checks.values()].filter((check) => current.has(check.source));
  }

  async ensure(slug: string, replace: boolean): Promise<{ callbacks: CallbackOutcome[] }> {
    const account = this.accounts.of(slug);
    const desired = this.desiredUrl(account);
    let rows = await this.primaryRows(account);
    const callbacks: CallbackOutcome[] = [];
    for (const eventType of MAILJET_EVENT_TYPES) {
      try {
        callbacks.push(await this.ensureOne(account, eventType, rows.find((row) => row.EventType === eventType), desired, replace));
      } catch (error) {
        // Made meanwhile (another ensure at the same time): read again, and go on from what is there.
        if (!(error instanceof MailjetApiError) || error.status !== 400 || error.method !== 'POST') throw error;
        rows = await this.primaryRows(account);
        callbacks.push(await this.ensureOne(account, eventType, rows.find((row) => row.EventType === eventType), desired, replace));
      }
    }
    this.record(account, callbacks.map((c) => ({ eventType: c.eventType, ours: c.action !== 'conflict', status: c.status })));
    return { callbacks };
  }

  /** Mailjet's rows as they are; `ours` is null when PUBLIC_URL is not set (this service's address is unknown). */
  async list(slug: string): Promise<{ callbacks: Array<Omit<CallbackRow, 'ours'> & { ours: boolean | null }> }> {
    const account = this.accounts.of(slug);
    const rows = await account.client.listAll<EventCallbackUrl>(RESOURCE);
    const ours = this.config.publicUrl ? this.oursTest(account) : () => null;
    const callbacks = rows.map((row) => ({
      id: row.ID,
      eventType: row.EventType,
      url: maskedUrl(row.Url),
      status: row.Status,
      version: row.Version,
      isBackup: row.IsBackup,
      ours: ours(row.Url),
    }));
    if (this.config.publicUrl) this.record(account, rows.filter((row) => !row.IsBackup).map((row) => ({ eventType: row.EventType, ours: ours(row.Url) === true, status: row.Status })));
    return { callbacks };
  }

  /** Reads every source's callbacks once; what it finds shows in GET /admin/status and in metrics. Never rejects. */
  checkAll(): Promise<void> {
    if (!this.checking) {
      // `.finally` runs after the assignment, even when there is nothing to check.
      this.checking = this.checkEach().finally(() => (this.checking = undefined));
    }
    return this.checking;
  }

  private async checkEach(): Promise<void> {
    for (const account of this.accounts.all()) await this.check(account);
  }

  private async primaryRows(account: MailjetAccount): Promise<EventCallbackUrl[]> {
    return (await account.client.listAll<EventCallbackUrl>(RESOURCE)).filter((row) => !row.IsBackup);
  }

  /** Whether a URL leads to this source's callback: `/webhooks/mailjet/<slug>`, or for `default` the plain `/webhooks/mailjet` too. */
  private oursTest(account: MailjetAccount): (url: string) => boolean {
    const own = destinationOf(this.desiredUrl(account, false));
    const plain = account.source.slug === DEFAULT_SOURCE_SLUG ? destinationOf(`${this.config.publicUrl}${MAILJET_WEBHOOK_PATH}`) : undefined;
    return (url) => {
      const destination = destinationOf(url);
      return destination !== undefined && (destination === own || destination === plain);
    };
  }

  private async check(account: MailjetAccount): Promise<void> {
    try {
      if (!this.config.publicUrl) throw new Error('PUBLIC_URL is not set: which callbacks lead here cannot be told');
      const ours = this.oursTest(account);
      const rows = await this.primaryRows(account);
      this.record(
        account,
        rows.map((row) => ({ eventType: row.EventType, ours: ours(row.Url), status: row.Status })),
      );
      const found = this.checks.get(account.source.slug)!;
      if (found.dead.length > 0) {
        this.logger.warn(`source ${account.source.slug}: Mailjet suspended the callbacks of ${found.dead.join(', ')}; POST /admin/sources/${account.source.slug}/mailjet/callbacks re-arms them`);
      }
    } catch (error) {
      this.checks.set(account.source.slug, {
        source: account.source.slug,
        checkedAt: new Date().toISOString(),
        dead: [],
        missing: [],
        error: (error as Error).message,
      });
    }
  }

  private record(account: MailjetAccount, rows: Array<{ eventType: string; ours: boolean; status: string }>): void {
    const ours = rows.filter((row) => row.ours);
    this.checks.set(account.source.slug, {
      source: account.source.slug,
      checkedAt: new Date().toISOString(),
      dead: MAILJET_EVENT_TYPES.filter((type) => ours.some((row) => row.eventType === type && row.status === 'dead')),
      missing: MAILJET_EVENT_TYPES.filter((type) => !ours.some((row) => row.eventType === type)),
    });
  }

  private async ensureOne(
    account: MailjetAccount,
    eventType: MailjetEventType,
    row: EventCallbackUrl | undefined,
    desired: string,
    replace: boolean,
  ): Promise<CallbackOutcome> {
    const fields = { Url: desired, Version: GROUPED, Status: 'alive' as const };
    if (!row) {
      const created = await account.client.create<EventCallbackUrl>(RESOURCE, { EventType: eventType, IsBackup: false, ...fields });
      return { eventType, action: 'created', status: created.Status ?? 'alive' };
    }
    const ours = this.oursTest(account)(row.Url);
    if (!ours && !replace) return { eventType, action: 'conflict', status: row.Status, url: maskedUrl(row.Url) };
    const sameCredentials = credentialsOf(row.Url) === credentialsOf(desired);
    if (ours && sameCredentials && Number(row.Version) === GROUPED && row.Status === 'alive') {
      return { eventType, action: 'unchanged', status: 'alive' };
    }
    // Mailjet revives a suspended callback only when its URL changes: a new re-arm value does it.
    const url = row.Status === 'dead' ? withRearm(desired) : desired;
    const updated = await account.client.update<EventCallbackUrl>(RESOURCE, row.ID, { ...fields, Url: url });
    return { eventType, action: 'updated', status: updated.Status ?? 'alive' };
  }

  /** The source's callback URL on PUBLIC_URL, with its Basic credentials in it unless `withCredentials` is false. */
  private desiredUrl(account: MailjetAccount, withCredentials = true): string {
    const base = this.config.publicUrl;
    if (!base) {
      throw new ConflictException('PUBLIC_URL is not set: Mailjet needs the address it reaches this service at (set PUBLIC_URL and restart)');
    }
    const url = new URL(`${base}/webhooks/mailjet/${account.source.slug}`);
    const credentials = account.source.webhook;
    if (withCredentials && credentials.passwords.length > 0) {
      url.username = encodeURIComponent(credentials.user);
      // The current password: the first one (a rotated-out one follows it during its grace window).
      url.password = encodeURIComponent(credentials.passwords[0].password);
    }
    return url.toString();
  }
}

function withRearm(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set(REARM_PARAMETER, Date.now().toString(36));
  return parsed.toString();
}
