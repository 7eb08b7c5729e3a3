import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '@app/config';
import { BridgeMetrics } from '@app/metrics';
import { SegmentClient } from '@app/segment';
import { KnownSource, SourceDirectory } from '@app/sources';
import { DestinationGate } from './destination-gate';

export const FLUSH_TIMEOUT_MS = 10_000;

/** A source the worker was asked to forward for, but that is not in the sources table. */
export class UnknownSourceError extends Error {
  constructor(readonly sourceId: number) {
    super(`source ${sourceId} is not in the sources table (yet)`);
  }
}

/** A source whose secrets this process cannot open: its events wait (no attempt spent) until it can. */
export class SourceUnreadableError extends Error {}

/** Where one source's events go: its client, with its own batching and retry state, and its gate. */
export interface Destination {
  source: KnownSource;
  client: Pick<SegmentClient, 'deliver'>;
  gate: DestinationGate;
}

// A destination whose jobs came to it this recently competes for the worker's slots.
const BUSY_WINDOW_MS = 5_000;

interface Entry {
  /** Host and write key the client was made with. */
  key: string;
  /** When a job last asked for this destination. */
  usedAt: number;
  client: SegmentClient;
  gate: DestinationGate;
}

/**
 * One Segment client per source, made on first use and closed (after sending what it holds) when
 * the source's destination changes or the source is deleted. Each has its own SDK batches and its
 * own gate, so that a destination that fails or is slow holds back only its own events.
 */
@Injectable()
export class Destinations implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(Destinations.name);
  private readonly entries = new Map<number, Entry>();
  private readonly closing = new Set<Promise<void>>();
  private lastReloadForUnknown = 0;

  constructor(
    private readonly sources: SourceDirectory,
    private readonly config: AppConfig,
    private readonly metrics: BridgeMetrics,
  ) {}

  onModuleInit(): void {
    this.sources.onChange((sources) => {
      for (const [id, entry] of this.entries) {
        const source = sources.get(id);
        if (!source || source.deleted || keyOf(source) !== entry.key) this.retire(id, entry);
      }
    });
  }

  async onApplicationShutdown(): Promise<void> {
    for (const [id, entry] of this.entries) this.retire(id, entry);
    await Promise.all(this.closing);
  }

  /** The destination of `sourceId`; reads the sources again once for one it does not know (created a moment ago). */
  async of(sourceId: number): Promise<Destination> {
    let source = this.sources.byId(sourceId);
    if (!source && Date.now() - this.lastReloadForUnknown > 1000) {
      this.lastReloadForUnknown = Date.now();
      await this.sources.reload();
      source = this.sources.byId(sourceId);
    }
    if (!source) {
      const unreadable = this.sources.unreadable().find((known) => known.id === sourceId);
      if (unreadable) throw new SourceUnreadableError(`this worker cannot open the secrets of source ${unreadable.slug} (SECRETS_KEY)`);
      throw new UnknownSourceError(sourceId);
    }
    let entry = this.entries.get(sourceId);
    if (entry && entry.key !== keyOf(source)) {
      this.retire(sourceId, entry);
      entry = undefined;
    }
    if (!entry && !source.deleted) {
      const { host, writeKey } = source.destination;
      if (writeKey === undefined) throw new Error(`source ${source.slug} has no write key`);
      const concurrency = this.config.workerConcurrency;
      entry = {
        key: keyOf(source),
        client: new SegmentClient({
          writeKey,
          host,
          maxBatchSize: Math.min(concurrency, 100),
          observe: (code, seconds) => {
            this.metrics.destinationRequests.inc({ source: source.slug, code });
            this.metrics.destinationRequestDuration.observe({ source: source.slug }, seconds);
          },
        }),
        gate: new DestinationGate(concurrency, this.config.retryPolicy.backoffMs),
        usedAt: 0,
      };
      this.entries.set(sourceId, entry);
    }
    if (!entry) return { source, client: NO_CLIENT, gate: OPEN_GATE };
    const now = Date.now();
    entry.usedAt = now;
    // Half the slots at most only while another destination has jobs too: an idle source takes none.
    entry.gate.shareWith(1 + this.othersBusy(entry, now));
    return { source, client: entry.client, gate: entry.gate };
  }

  private othersBusy(entry: Entry, now: number): number {
    let busy = 0;
    for (const other of this.entries.values()) if (other !== entry && now - other.usedAt < BUSY_WINDOW_MS) busy++;
    return busy;
  }

  private retire(sourceId: number, entry: Entry): void {
    this.entries.delete(sourceId);
    const closing = entry.client
      .close(FLUSH_TIMEOUT_MS)
      .catch((error: Error) => this.logger.warn(`the client of source ${sourceId} did not close cleanly: ${error.message}`))
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
  }
}

/** The write key is compared by itself, never logged or kept anywhere else. */
function keyOf(source: KnownSource): string {
  return `${source.destination.host}\n${source.destination.writeKey ?? ''}`;
}

/** A deleted source has no client: nothing is sent for it. */
const NO_CLIENT: Pick<SegmentClient, 'deliver'> = {
  deliver: () => Promise.reject(new Error('a deleted source has no destination')),
};
const OPEN_GATE = new DestinationGate(Number.MAX_SAFE_INTEGER, 1000);
