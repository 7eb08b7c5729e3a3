import { forwardEventJobOptions, segmentBackoffDelay } from './queue.constants';
import { validateForwardEventJobData } from './forward-event-job.dto';

describe('segmentBackoffDelay', () => {
  it('doubles from the base delay, with jitter between half and all of it', () => {
    for (const [attempt, ceiling] of [[1, 1000], [2, 2000], [3, 4000], [6, 32000]]) {
      for (let i = 0; i < 50; i++) {
        const delay = segmentBackoffDelay(attempt, 1000);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('is capped at one hour', () => {
    expect(segmentBackoffDelay(40, 1000)).toBeLessThanOrEqual(3_600_000);
    expect(segmentBackoffDelay(40, 1000)).toBeGreaterThanOrEqual(1_800_000);
  });

  it('waits what Retry-After asked for', () => {
    expect(segmentBackoffDelay(1, 50, { retryAfterMs: 2000 })).toBe(2000);
    expect(segmentBackoffDelay(1, 50, { retryAfterMs: 10 * 3_600_000 })).toBe(3_600_000);
  });
});

describe('forwardEventJobOptions', () => {
  it('keeps failed jobs and bounds completed ones', () => {
    const options = forwardEventJobOptions({ maxAttempts: 10, backoffMs: 1000 });
    expect(options).toMatchObject({ attempts: 10, backoff: { type: 'segment-backoff', delay: 1000 } });
    expect(options.removeOnFail).toEqual({ age: expect.any(Number), count: expect.any(Number) });
    expect((options.removeOnFail as { count: number }).count).toBeGreaterThan(0);
  });
});

describe('validateForwardEventJobData', () => {
  it('accepts the id of a stored event', () => {
    expect(validateForwardEventJobData({ eventId: '42' })).toEqual({ eventId: '42' });
  });

  it.each([[undefined], [{}], [{ eventId: 42 }], [{ eventId: '0' }], [{ eventId: '1; drop' }]])('rejects %p', (data) => {
    expect(() => validateForwardEventJobData(data)).toThrow(/invalid job data/);
  });
});
