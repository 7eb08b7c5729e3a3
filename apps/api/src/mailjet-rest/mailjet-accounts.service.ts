import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { MailjetRestClient } from '@app/mailjet-api';
import { KnownSource, SourceDirectory } from '@app/sources';

/** A source and a REST client made with its Mailjet keys. */
export interface MailjetAccount {
  source: KnownSource;
  client: MailjetRestClient;
}

/**
 * The Mailjet account of each source: its REST client, made with the source's API keys (the
 * environment's for `default`), against MAILJET_API_URL. Clients are made per version of the
 * source, so that new keys take effect at once.
 */
@Injectable()
export class MailjetAccounts {
  private readonly clients = new WeakMap<KnownSource, MailjetRestClient>();

  constructor(
    private readonly sources: SourceDirectory,
    private readonly config: AppConfig,
  ) {}

  /** The account of the source `slug`: 404 if there is no such source, 409 if it has no Mailjet keys. */
  of(slug: string): MailjetAccount {
    const source = this.sources.bySlug(slug);
    if (!source) throw new NotFoundException(`no source ${slug}`);
    const account = this.ofSource(source);
    if (!account) {
      throw new ConflictException(
        source.slug === 'default'
          ? 'the default source has no Mailjet API keys: set MAILJET_API_KEY and MAILJET_API_SECRET'
          : `source ${slug} has no Mailjet API keys: PATCH /admin/sources/${slug} with {"mailjet": {"apiKey", "apiSecret"}}`,
      );
    }
    return account;
  }

  /** The account of a source, or undefined when it has no keys. */
  ofSource(source: KnownSource): MailjetAccount | undefined {
    if (!source.mailjet) return undefined;
    let client = this.clients.get(source);
    if (!client) {
      client = new MailjetRestClient({ baseUrl: this.config.mailjetApi.url, ...source.mailjet });
      this.clients.set(source, client);
    }
    return { source, client };
  }

  /** Every source (not deleted) that has Mailjet keys. */
  all(): MailjetAccount[] {
    return this.sources.all().flatMap((source) => {
      const account = source.deleted ? undefined : this.ofSource(source);
      return account ? [account] : [];
    });
  }
}
