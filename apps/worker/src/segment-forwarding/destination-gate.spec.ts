import { DestinationGate } from './destination-gate';

const T0 = 1_000_000;

describe('DestinationGate', () => {
  it('lets every job of a healthy destination through while it is the only source', () => {
    const gate = new DestinationGate(4, 100);
    for (let i = 0; i < 10; i++) expect(gate.enter(T0)).toEqual({ admitted: true, probe: false });
  });

  it('keeps half the slots for the other sources when there are some', () => {
    const gate = new DestinationGate(4, 100);
    gate.shareWith(2);
    const admitted = [gate.enter(T0), gate.enter(T0)];
    expect(admitted.every((a) => a.admitted)).toBe(true);
    const third = gate.enter(T0);
    expect(third).toMatchObject({ admitted: false, reason: expect.stringContaining('2 jobs in flight') });
    gate.leave({ probe: false }, 'answered', undefined, T0);
    expect(gate.enter(T0).admitted).toBe(true);
  });

  it('after a failure, turns jobs away until its backoff ends, then lets one probe through at a time', () => {
    const gate = new DestinationGate(50, 100);
    const first = gate.enter(T0);
    gate.leave({ probe: false }, 'failed', undefined, T0);
    expect(first.admitted).toBe(true);
    expect(gate.failing).toBe(true);
    const turnedAway = gate.enter(T0 + 50);
    expect(turnedAway).toMatchObject({ admitted: false });
    expect((turnedAway as { retryAt: number }).retryAt).toBeGreaterThanOrEqual(T0 + 100);

    expect(gate.enter(T0 + 100)).toEqual({ admitted: true, probe: true });
    expect(gate.enter(T0 + 100)).toMatchObject({ admitted: false }); // one probe at a time
    gate.leave({ probe: true }, 'failed', undefined, T0 + 100);
    // The backoff doubles: 200 ms now.
    expect(gate.enter(T0 + 250)).toMatchObject({ admitted: false });
    expect(gate.enter(T0 + 300)).toEqual({ admitted: true, probe: true });
    gate.leave({ probe: true }, 'answered', undefined, T0 + 300);
    expect(gate.failing).toBe(false);
    expect(gate.enter(T0 + 300)).toEqual({ admitted: true, probe: false });
  });

  it('honours Retry-After for the whole destination, and caps its own backoff', () => {
    const gate = new DestinationGate(50, 1000);
    gate.enter(T0);
    gate.leave({ probe: false }, 'failed', 120_000, T0);
    expect((gate.enter(T0 + 60_000) as { retryAt: number }).retryAt).toBeGreaterThanOrEqual(T0 + 120_000);

    const capped = new DestinationGate(50, 1000);
    for (let i = 0; i < 20; i++) {
      const at = T0 + i * 60_000;
      const admission = capped.enter(at); // a minute apart: past any backoff, so a probe each time
      expect(admission.admitted).toBe(true);
      if (admission.admitted) capped.leave(admission, 'failed', undefined, at);
    }
    const wait = (capped.enter(T0 + 19 * 60_000) as { retryAt: number }).retryAt - (T0 + 19 * 60_000);
    expect(wait).toBeLessThanOrEqual(30_000 + 250);
  });

  it('learns nothing from a job that sent nothing', () => {
    const gate = new DestinationGate(50, 100);
    gate.enter(T0);
    gate.leave({ probe: false }, 'none', undefined, T0);
    expect(gate.failing).toBe(false);
  });
});
