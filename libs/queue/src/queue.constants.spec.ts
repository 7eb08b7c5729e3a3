import { forwardEventsJobOptions, MAX_EVENTS_PER_JOB, segmentBackoffDelay } from './queue.constants';
import { validateForwardEventsJobData } from './forward-event-job.dto';

// Beyond 2^53, and across a digit boundary: ids that went through a JS number, or were compared
// as text, would come out as other ids.
const LAST_SAFE = 9007199254740991n;
const MESSAGE_ID = `mailjet-${'a'.repeat(64)}`;
const OTHER_MESSAGE_ID = `mailjet-${'b'.repeat(64)}`;

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

describe('forwardEventsJobOptions', () => {
  it('keeps failed jobs and bounds completed ones', () => {
    const options = forwardEventsJobOptions({ maxAttempts: 10, backoffMs: 1000 });
    expect(options).toMatchObject({ attempts: 10, backoff: { type: 'segment-backoff', delay: 1000 } });
    expect(options.removeOnComplete).toEqual({ age: expect.any(Number), count: expect.any(Number) });
    expect(options.removeOnFail).toEqual({ age: expect.any(Number), count: expect.any(Number) });
    expect((options.removeOnFail as { count: number }).count).toBeGreaterThan(0);
  });
});

describe('validateForwardEventsJobData', () => {
  it('reads the event ids of a job, exactly and in order, with nothing delivered yet', () => {
    const job = validateForwardEventsJobData({ events: `${LAST_SAFE - 1n}-${LAST_SAFE + 2n},9999999999`, count: 5 });

    expect(job.eventIds).toEqual([LAST_SAFE - 1n, LAST_SAFE, LAST_SAFE + 1n, LAST_SAFE + 2n, 9999999999n]);
    expect(job.delivered).toEqual(new Map());
  });

  it(`takes a job of ${MAX_EVENTS_PER_JOB} events`, () => {
    const job = validateForwardEventsJobData({ events: `1-${MAX_EVENTS_PER_JOB}`, count: MAX_EVENTS_PER_JOB });
    expect(job.eventIds).toHaveLength(MAX_EVENTS_PER_JOB);
  });

  it('reads the deliveries an earlier attempt could not record', () => {
    const job = validateForwardEventsJobData({
      events: `${LAST_SAFE + 1n}-${LAST_SAFE + 2n}`,
      count: 2,
      delivered: { [`${LAST_SAFE + 2n}`]: MESSAGE_ID },
    });

    expect(job.delivered).toEqual(new Map([[LAST_SAFE + 2n, MESSAGE_ID]]));
  });

  it('takes a job of the version before groups: one event, maybe already delivered', () => {
    expect(validateForwardEventsJobData({ eventId: `${LAST_SAFE + 2n}` })).toEqual({
      eventIds: [LAST_SAFE + 2n],
      delivered: new Map(),
    });
    expect(validateForwardEventsJobData({ eventId: `${LAST_SAFE + 2n}`, deliveredMessageId: MESSAGE_ID })).toEqual({
      eventIds: [LAST_SAFE + 2n],
      delivered: new Map([[LAST_SAFE + 2n, MESSAGE_ID]]),
    });
  });

  it('reads a delivery that this version wrote into a job of the version before', () => {
    // The processor remembers a delivery in the new field, whatever the job's shape.
    const job = validateForwardEventsJobData({ eventId: `${LAST_SAFE + 2n}`, delivered: { [`${LAST_SAFE + 2n}`]: MESSAGE_ID } });

    expect(job).toEqual({ eventIds: [LAST_SAFE + 2n], delivered: new Map([[LAST_SAFE + 2n, MESSAGE_ID]]) });
  });

  it.each([
    ['no data', undefined],
    ['null', null],
    ['no events', { count: 1 }],
    ['no count', { events: '1' }],
    ['events as a number', { events: 1, count: 1 }],
    ['events as a list', { events: ['1'], count: 1 }],
    ['a count of 0', { events: '1', count: 0 }],
    ['a count that is not a whole number', { events: '1', count: 1.5 }],
    ['a count as text', { events: '1', count: '1' }],
    [`a count over ${MAX_EVENTS_PER_JOB}`, { events: '1', count: MAX_EVENTS_PER_JOB + 1 }],
    ['an empty list of events', { events: '', count: 1 }],
    ['event id 0', { events: '0', count: 1 }],
    ['a leading zero', { events: '01', count: 1 }],
    ['an empty range', { events: '1,,2', count: 2 }],
    ['a range of three ends', { events: '1-2-3', count: 3 }],
    ['a range that runs backwards', { events: '5-3', count: 3 }],
    ['spaces', { events: '1, 2', count: 2 }],
    ['an id of 20 digits', { events: '12345678901234567890', count: 1 }],
    ['SQL in the events', { events: '1; drop table mailjet_events', count: 1 }],
    [`one event more than ${MAX_EVENTS_PER_JOB}`, { events: `1-${MAX_EVENTS_PER_JOB},${MAX_EVENTS_PER_JOB + 2}`, count: MAX_EVENTS_PER_JOB }],
    ['a range of a billion events', { events: '1-1000000000', count: MAX_EVENTS_PER_JOB }],
    ['a legacy id as a number', { eventId: 42 }],
    ['legacy event id 0', { eventId: '0' }],
    ['a legacy id that is not decimal', { eventId: '1; drop' }],
    ['a legacy delivered messageId of something else', { eventId: '1', deliveredMessageId: 'not-ours' }],
  ])('refuses %s', (_, data) => {
    expect(() => validateForwardEventsJobData(data)).toThrow(/^invalid job data/);
  });

  it.each([
    // Sparse, so that each of its entries alone would pass.
    ['a list', Object.assign([], { 1: MESSAGE_ID })],
    ['null', null],
    ['text', MESSAGE_ID],
    ['a key that is not an event id', { abc: MESSAGE_ID }],
    ['event id 0 as a key', { 0: MESSAGE_ID }],
    ['a messageId of something else', { 1: 'mailjet-not-ours' }],
    ['a messageId in capitals', { 1: MESSAGE_ID.toUpperCase() }],
    ['a messageId that is not text', { 1: 42 }],
    ['one good entry and one bad', { 1: MESSAGE_ID, 2: `${OTHER_MESSAGE_ID}x` }],
  ])('refuses a delivered map that is %s, in either shape of job', (_, delivered) => {
    expect(() => validateForwardEventsJobData({ events: '1-2', count: 2, delivered })).toThrow(/^invalid job data: delivered/);
    expect(() => validateForwardEventsJobData({ eventId: '1', delivered })).toThrow(/^invalid job data: delivered/);
  });

  it('refuses events text over 64 KiB before reading an id of it', () => {
    // Valid ranges, each id alone, so that only the length can refuse them early.
    const events = Array.from({ length: 7000 }, (_, i) => `${1_000_000_000 + 2 * i}`).join(',');
    expect(events.length).toBeGreaterThan(64 * 1024);

    expect(() => validateForwardEventsJobData({ events, count: MAX_EVENTS_PER_JOB })).toThrow('invalid job data: events is too long');
  });
});
