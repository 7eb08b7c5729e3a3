/**
 * Event ids as ranges of consecutive ids: `"101-200,205,207-209"`. The events of one stored group
 * have (nearly) consecutive ids, so a job of hundreds of events holds a few bytes of ids in Redis.
 */
export function encodeEventIds(ids: readonly bigint[]): string {
  const sorted = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ranges: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let end = i;
    while (end + 1 < sorted.length && sorted[end + 1] === sorted[end] + 1n) end++;
    ranges.push(end === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[end]}`);
    i = end + 1;
  }
  return ranges.join(',');
}

// PostgreSQL's bigint.
const MAX_EVENT_ID = 9223372036854775807n;

export const EVENT_ID_RANGES = /^[1-9]\d{0,18}(-[1-9]\d{0,18})?(,[1-9]\d{0,18}(-[1-9]\d{0,18})?)*$/;

/** The ids of `encodeEventIds`; throws past `maxCount` ids or on a malformed text. */
export function decodeEventIds(text: string, maxCount: number): bigint[] {
  if (!EVENT_ID_RANGES.test(text)) throw new Error('event ids must be ranges of decimal ids, e.g. "101-200,205"');
  const ids: bigint[] = [];
  for (const range of text.split(',')) {
    const [first, last = first] = range.split('-').map(BigInt);
    if (last < first || last - first >= BigInt(maxCount - ids.length) || last > MAX_EVENT_ID) {
      throw new Error(`event ids hold more than ${maxCount} ids, a range that runs backwards, or an id beyond bigint`);
    }
    for (let id = first; id <= last; id++) ids.push(id);
  }
  return ids;
}
