import { TestDatabase } from '../support/database';
import { SegmentSink } from '../support/segment-sink';
import { waitFor } from '../support/wait-for';

/** A source as the invariants see it: its rows in PostgreSQL, and the sink of its destination. */
export interface SourceUnderTest {
  name: string;
  id: number;
  sink: SegmentSink;
}

/** The MessageIDs of the events the client posted to each source. */
export type PostedEvents = Map<SourceUnderTest, string[]>;

/** One source's share of a fault. */
export interface FaultRow {
  fault: string;
  source: string;
  posted: number;
  stored: number;
  forwarded: number;
  /** Distinct posted events of this source that its own sink accepted. */
  acceptedByItsSink: number;
  /** Acceptances of this source's posted events by another source's sink: always a defect. */
  acceptedByAnotherSink: number;
  duplicates: number;
  failed: number;
  lost: number;
  forwardedTwice: number;
  resentAfterCrash: number;
  failuresWithoutReason: number;
  unforwarded: number;
  seconds: number;
}

/** Waits until no posted event is still received or queued. */
export async function waitUntilSettled(db: TestDatabase, timeoutMs = 180000): Promise<void> {
  await waitFor('every stored event to be forwarded, duplicate, failed or invalid', async () =>
    (await db.count("status in ('received', 'queued')")) === 0,
    { timeoutMs, intervalMs: 250 },
  );
}

/** The MessageIDs each source was sent in any of `parts` (a fault that posts in several rounds). */
export function combined(...parts: PostedEvents[]): PostedEvents {
  const all: PostedEvents = new Map();
  for (const part of parts) for (const [source, messageIds] of part) all.set(source, [...(all.get(source) ?? []), ...messageIds]);
  return all;
}

/** The Mailjet MessageID a track call carries (the mapper puts the exact digits in `email_id`). */
const mailjetMessageIdOf = (call: SegmentSink['accepted'][number]) => String(call.properties.email_id);

/** How many of the events with these MessageIDs `sink` accepted, each counted once. */
export function acceptedBy(sink: SegmentSink, messageIds: readonly string[]): number {
  const wanted = new Set(messageIds);
  return new Set(sink.accepted.map(mailjetMessageIdOf).filter((id) => wanted.has(id))).size;
}

/**
 * The invariants, per source, from the database and the sinks: every posted event stored under
 * its source; every valid, non-duplicate event forwarded, and accepted by its own source's sink
 * and no other; no dedupe key accepted by the sink twice; every failure with a reason. An event
 * is followed to a sink by its MessageID, which the test chose, not by what the product recorded.
 */
export async function measure(
  fault: string,
  db: TestDatabase,
  posted: PostedEvents,
  startedAt: number,
  /** A worker was killed mid-request: a sink may have accepted a batch whose answer it never got. */
  workerCrashed: boolean,
): Promise<FaultRow[]> {
  const rows: FaultRow[] = [];
  for (const [source, messageIds] of posted) {
    const [row] = await db.query<{
      stored: number;
      keys: number;
      forwarded: number;
      duplicates: number;
      failed: number;
      without_reason: number;
      keys_forwarded_twice: number;
    }>(
      `select count(distinct message_id)::int as stored,
              count(distinct dedupe_key) filter (where status <> 'invalid')::int as keys,
              count(distinct dedupe_key) filter (where status = 'forwarded')::int as forwarded,
              count(*) filter (where status = 'duplicate')::int as duplicates,
              count(*) filter (where status = 'failed')::int as failed,
              count(*) filter (where status in ('failed', 'invalid') and coalesce(last_error, '') = '')::int as without_reason,
              (select count(*)::int from (
                 select dedupe_key from mailjet_events
                 where source_id = $2 and message_id = any($1::text[]) and status = 'forwarded'
                 group by dedupe_key having count(*) > 1) twice) as keys_forwarded_twice
       from mailjet_events where source_id = $2 and message_id = any($1::text[])`,
      [messageIds, source.id],
    );
    const own = new Set(messageIds);
    const acceptedByItsSink = acceptedBy(source.sink, messageIds);
    const otherSinks = [...posted.keys()].filter((other) => other.sink !== source.sink).map((other) => other.sink);
    const acceptedByAnotherSink = otherSinks.flatMap((sink) => sink.accepted).filter((call) => own.has(mailjetMessageIdOf(call))).length;
    const acceptedTimes = new Map<string, number>();
    for (const call of source.sink.accepted) acceptedTimes.set(call.messageId, (acceptedTimes.get(call.messageId) ?? 0) + 1);
    const acceptedTwice = [...acceptedTimes.values()].filter((times) => times > 1).length;
    rows.push({
      fault,
      source: source.name,
      posted: messageIds.length,
      stored: row.stored,
      forwarded: row.forwarded,
      acceptedByItsSink,
      acceptedByAnotherSink,
      duplicates: row.duplicates,
      failed: row.failed,
      lost: messageIds.length - row.stored,
      // Two forwarded rows for one dedupe key is always a defect; a second acceptance by the sink is
      // one too, unless a worker died with that request in flight (then it is resent, same messageId).
      forwardedTwice: row.keys_forwarded_twice + (workerCrashed ? 0 : acceptedTwice),
      resentAfterCrash: workerCrashed ? acceptedTwice : 0,
      failuresWithoutReason: row.without_reason,
      unforwarded: row.keys - row.forwarded - row.failed,
      seconds: Math.round((Date.now() - startedAt) / 1000),
    });
  }
  return rows;
}
