import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { EventForForwarding, Lookup, LookupKind, MailjetLookupRepository } from '@app/database';
import { ContactsList, MailjetMessage, MailjetRestClient } from '@app/mailjet-api';
import { SegmentTrackCall } from '@app/segment';
import { KnownSource, SourceDirectory } from '@app/sources';

// Lookups in flight at once, across jobs; more are left for a later event of the same message.
const MAX_IN_FLIGHT = 100;
const LOOKUP_REQUEST_TIMEOUT_MS = 10_000;

const PROPERTY_OF: Record<LookupKind, string> = { subject: 'email_subject', list: 'list_name' };

interface Wanted {
  kind: LookupKind;
  /** `<source id>:<Mailjet id>`: the same id means another thing in another account. */
  key: string;
  source: KnownSource;
  mailjetId: string;
  calls: SegmentTrackCall[];
}

/**
 * Opt-in enrichment (SPEC section 9, MAILJET_ENRICH): `email_subject` on every event of a message,
 * `list_name` on unsubscribes, from Mailjet's REST API with the source's keys, cached in
 * PostgreSQL (`mailjet_lookups`). A job waits for lookups at most MAILJET_ENRICH_TIMEOUT_MS: an
 * event whose lookup is late, or failed, goes without the property; a late answer is still cached,
 * for the message's next events.
 */
@Injectable()
export class Enrichment {
  private readonly logger = new Logger(Enrichment.name);
  private readonly clients = new WeakMap<KnownSource, MailjetRestClient>();
  /** Lookups under way, shared by the jobs that want the same one. */
  private readonly inFlight = new Map<string, Promise<string | null | undefined>>();
  private readonly settings: AppConfig['mailjetEnrichment'];

  constructor(
    private readonly lookups: MailjetLookupRepository,
    private readonly sources: SourceDirectory,
    private readonly config: AppConfig,
  ) {
    this.settings = config.mailjetEnrichment;
  }

  get enabled(): boolean {
    return this.settings.subject || this.settings.list;
  }

  /**
   * Adds what it can find within the timeout to the calls' properties. Nothing is added after the
   * timeout: the calls may be on their way by then (a late answer is only cached).
   */
  async enrich(outgoing: ReadonlyArray<{ event: EventForForwarding; call: SegmentTrackCall }>): Promise<void> {
    if (!this.enabled) return;
    const wanted = this.wantedOf(outgoing);
    if (wanted.size === 0) return;
    let expired = false;
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, this.settings.timeoutMs).unref()).then(() => {
      expired = true;
    });
    const found = (want: Wanted, value: string | null | undefined) => {
      if (value && !expired) for (const call of want.calls) call.properties[PROPERTY_OF[want.kind]] = value;
    };
    const lookUpAll = async () => {
      const cached = new Map((await this.lookups.find([...wanted.values()])).map((lookup) => [`${lookup.kind} ${lookup.key}`, lookup]));
      await Promise.all(
        [...wanted.entries()].map(async ([id, want]) => found(want, cached.has(id) ? cached.get(id)!.value : await this.lookUp(want))),
      );
    };
    try {
      await Promise.race([lookUpAll(), deadline]);
    } catch (error) {
      // Enrichment is a nicety: the events go without it.
      this.logger.warn(`enrichment skipped: ${(error as Error).message}`);
    }
    expired = true;
  }

  private wantedOf(outgoing: ReadonlyArray<{ event: EventForForwarding; call: SegmentTrackCall }>): Map<string, Wanted> {
    const wanted = new Map<string, Wanted>();
    const want = (kind: LookupKind, source: KnownSource, mailjetId: string, call: SegmentTrackCall) => {
      const key = `${source.id}:${mailjetId}`;
      const id = `${kind} ${key}`;
      const entry = wanted.get(id) ?? { kind, key, source, mailjetId, calls: [] };
      entry.calls.push(call);
      wanted.set(id, entry);
    };
    for (const { event, call } of outgoing) {
      const source = this.sources.byId(event.sourceId);
      if (!source?.mailjet) continue;
      if (this.settings.subject && event.messageId) want('subject', source, event.messageId, call);
      const listId = call.properties.list_id;
      if (this.settings.list && event.eventType === 'unsub' && typeof listId === 'string' && /^\d{1,20}$/.test(listId)) {
        want('list', source, listId, call);
      }
    }
    return wanted;
  }

  /** Asks Mailjet once, whoever else waits for it; the answer is cached whenever it comes. Undefined: not known now. */
  private lookUp(want: Wanted): Promise<string | null | undefined> {
    const id = `${want.kind} ${want.key}`;
    const running = this.inFlight.get(id);
    if (running) return running;
    if (this.inFlight.size >= MAX_IN_FLIGHT) return Promise.resolve(undefined);
    const lookup = (async () => {
      try {
        const client = this.clientOf(want.source);
        const value =
          want.kind === 'subject'
            ? ((await client.get<MailjetMessage>('message', want.mailjetId, { ShowSubject: true }))?.Subject ?? null)
            : ((await client.get<ContactsList>('contactslist', want.mailjetId))?.Name ?? null);
        await this.lookups.save({ kind: want.kind, key: want.key, value } satisfies Lookup);
        return value;
      } catch (error) {
        this.logger.debug(`lookup of ${id} failed: ${(error as Error).message}`);
        return undefined;
      } finally {
        this.inFlight.delete(id);
      }
    })();
    this.inFlight.set(id, lookup);
    return lookup;
  }

  private clientOf(source: KnownSource): MailjetRestClient {
    let client = this.clients.get(source);
    if (!client) {
      client = new MailjetRestClient({
        baseUrl: this.config.mailjetApi.url,
        ...source.mailjet!,
        requestTimeoutMs: LOOKUP_REQUEST_TIMEOUT_MS,
        maxRetries: 1,
      });
      this.clients.set(source, client);
    }
    return client;
  }
}
