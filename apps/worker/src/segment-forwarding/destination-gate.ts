// A failing destination gets this many jobs in flight at once (its probes); the others wait.
const MAX_PROBES = 1;
// A job the gate turns away comes back after at least this long (plus jitter).
const MIN_WAIT_MS = 250;
// The gate's backoff doubles with each failure in a row, up to this many base delays, and 30 s.
const MAX_CLOSED_BACKOFFS = 32;
const MAX_CLOSED_MS = 30_000;

/** What a delivery said about its destination: it answered (accepted or refused events), it failed, or nothing was sent. */
export type DestinationVerdict = 'answered' | 'failed' | 'none';

export type Admission = { admitted: true; probe: boolean } | { admitted: false; retryAt: number; reason: string };

/**
 * Keeps one destination from holding the worker's slots:
 * - a destination whose last delivery failed (5xx, timeout, refused connection) gets one job at a
 *   time, a probe, after its own backoff; its other jobs wait in the delayed set without spending
 *   an attempt, and come back once a probe got through;
 * - while other destinations have jobs too (asked for in the last few seconds), one destination
 *   has at most half of the worker's jobs in flight, so that a slow one leaves the rest to the
 *   others; alone, it may take every slot.
 */
export class DestinationGate {
  private inFlight = 0;
  private probes = 0;
  private failures = 0;
  private closedUntil = 0;
  private activeSources = 1;

  constructor(
    private readonly concurrency: number,
    private readonly backoffMs: number,
  ) {}

  /** How many destinations have jobs now, this one included: alone, it may take every slot. */
  shareWith(activeSources: number): void {
    this.activeSources = Math.max(1, activeSources);
  }

  get failing(): boolean {
    return this.failures > 0;
  }

  enter(now = Date.now()): Admission {
    if (this.failures > 0) {
      if (now < this.closedUntil || this.probes >= MAX_PROBES) {
        return { admitted: false, retryAt: jittered(Math.max(this.closedUntil, now + MIN_WAIT_MS)), reason: 'its destination is failing' };
      }
      this.probes++;
      this.inFlight++;
      return { admitted: true, probe: true };
    }
    const limit = this.activeSources > 1 ? Math.max(1, Math.ceil(this.concurrency / 2)) : Number.POSITIVE_INFINITY;
    if (this.inFlight >= limit) {
      return { admitted: false, retryAt: jittered(now + MIN_WAIT_MS), reason: `its destination has ${this.inFlight} jobs in flight already` };
    }
    this.inFlight++;
    return { admitted: true, probe: false };
  }

  leave(admission: { probe: boolean }, verdict: DestinationVerdict, retryAfterMs?: number, now = Date.now()): void {
    this.inFlight--;
    if (admission.probe) this.probes--;
    if (verdict === 'answered') {
      this.failures = 0;
      this.closedUntil = 0;
    } else if (verdict === 'failed') {
      this.failures++;
      const backoff = Math.min(this.backoffMs * 2 ** Math.min(this.failures - 1, 30), this.backoffMs * MAX_CLOSED_BACKOFFS, MAX_CLOSED_MS);
      this.closedUntil = Math.max(this.closedUntil, now + Math.max(backoff, retryAfterMs ?? 0));
    }
  }
}

function jittered(at: number): number {
  return at + Math.round(Math.random() * MIN_WAIT_MS);
}
