import { ConflictException, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { MAILJET_EVENT_TYPES, MailjetEventType } from '@app/mailjet';
import { EventCallbackUrl } from '@app/mailjet-api';
import { BridgeMetrics } from '@app/metrics';
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

/** A URL with the password of its credentials replaced by `***`. */
export function maskedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
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

  /** What the last checks found, per source with Mailjet keys. */
  lastChecks(): CallbackCheck[] {
    return [...this.checks.values()];
  }

  async ensure(slug: string, replace: boolean): Promise<{ callbacks: CallbackOutcome[] }> {
    const account = this.accounts.of(slug);
    const desired = this.desiredUrl(account);
    const rows = (await account.client.listAll<EventCallbackUrl>(RESOURCE)).filter((row) => !row.IsBackup);
    const callbacks: CallbackOutcome[] = [];
    for (const eventType of MAILJET_EVENT_TYPES) {
      callbacks.push(await this.ensureOne(account, eventType, rows.find((row) => row.EventType === eventType), desired, replace));
    }
    this.record(account, callbacks.map((c) => ({ eventType: c.eventType, ours: c.action !== 'conflict', status: c.status })));
    return { callbacks };
  }

  async list(slug: string): Promise<{ callbacks: CallbackRow[] }> {
    const account = this.accounts.of(slug);
    const desired = destinationOf(this.desiredUrl(account, false));
    const rows = await account.client.listAll<EventCallbackUrl>(RESOURCE);
    return {
      callbacks: rows.map((row) => ({
        id: row.ID,
        eventType: row.EventType,
        url: maskedUrl(row.Url),
        status: row.Status,
        version: row.Version,
        isBackup: row.IsBackup,
        ours: destinationOf(row.Url) === desired,
      })),
    };
  }

  /** Reads every source's callbacks once; what it finds shows in GET /admin/status. */
  checkAll(): Promise<void> {
    this.checking ??= (async () => {
      try {
        for (const account of this.accounts.all()) await this.check(account);
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  private async check(account: MailjetAccount): Promise<void> {
    const desired = destinationOf(this.desiredUrl(account, false));
    try {
      const rows = (await account.client.listAll<EventCallbackUrl>(RESOURCE)).filter((row) => !row.IsBackup);
      this.record(
        account,
        rows.map((row) => ({ eventType: row.EventType, ours: destinationOf(row.Url) === desired, status: row.Status })),
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
    const ours = destinationOf(row.Url) === destinationOf(desired);
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
