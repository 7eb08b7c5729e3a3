import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isMailjetEventType } from '@app/mailjet';

/** What the last look at shared state found: a value per label set, or undefined while none. */
export type GaugeReading = Array<{ labels: Record<string, string>; value: number }>;

/** A Mailjet event type as a label: one of the seven, or `unknown` (junk has endless distinct `event` strings). */
export const typeLabel = (type: string | null | undefined): string => (isMailjetEventType(type) ? type : 'unknown');

/**
 * The metrics of SPEC section 10, on a registry of the process's own (tests run several apps in
 * one process). Counters count where the work happens: ingest in the api, forwarding in the
 * worker. The gauges of shared state are read at scrape time by the collectors given to
 * `readSharedState`, with a short cache and a deadline (see SharedStateGauges).
 */
@Injectable()
export class BridgeMetrics {
  readonly registry = new Registry();

  readonly webhookRequests = new Counter({
    name: 'msb_webhook_requests_total',
    help: 'Mailjet callback requests answered, by source and HTTP status',
    labelNames: ['source', 'code'] as const,
    registers: [this.registry],
  });

  readonly eventsReceived = new Counter({
    name: 'msb_events_received_total',
    help: 'Events stored from Mailjet callbacks, by source, type and outcome (accepted: to forward; invalid: stored, never forwarded)',
    labelNames: ['source', 'type', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly eventsForwarded = new Counter({
    name: 'msb_events_forwarded_total',
    help: 'Events the destination accepted, by source and type',
    labelNames: ['source', 'type'] as const,
    registers: [this.registry],
  });

  readonly eventsDuplicate = new Counter({
    name: 'msb_events_duplicate_total',
    help: 'Events recognised as another delivery of an event already forwarded, by source',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly eventsFailed = new Counter({
    name: 'msb_events_failed_total',
    help: 'Events failed for good, by source and reason (rejected: refused by the destination or unmappable; attempts_exhausted)',
    labelNames: ['source', 'reason'] as const,
    registers: [this.registry],
  });

  readonly destinationRequests = new Counter({
    name: 'msb_destination_requests_total',
    help: 'Requests to destinations (/v1/batch), by source and HTTP status (error: no answer)',
    labelNames: ['source', 'code'] as const,
    registers: [this.registry],
  });

  readonly destinationRequestDuration = new Histogram({
    name: 'msb_destination_request_duration_seconds',
    help: 'Time of one request to a destination, answer included, by source',
    labelNames: ['source'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly eventDelivery = new Histogram({
    name: 'msb_event_delivery_seconds',
    help: 'Time from an event being received to it being forwarded (retries and outages included), by source',
    labelNames: ['source'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // prom-client names three of its gauges with a `_total` suffix, which promtool's lint (and
    // Prometheus's naming rules) keep for counters. Their counts by type stay, without it
    // (nodejs_active_handles, nodejs_active_requests, nodejs_active_resources).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
  }

  /**
   * A gauge whose values are read at scrape time: `read` answers the current readings, or
   * undefined when it could not (the last ones are shown then, and the scrape goes on).
   */
  sharedGauge(name: string, help: string, labelNames: readonly string[], read: () => Promise<GaugeReading | undefined>): void {
    let last: GaugeReading = [];
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        last = (await read()) ?? last;
        this.reset();
        for (const { labels, value } of last) this.set(labels, value);
      },
    });
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
