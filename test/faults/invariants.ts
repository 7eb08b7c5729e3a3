import { TestDatabase } from '../support/database';
import { SegmentSink } from '../support/segment-sink';
import { waitFor } from '../support/wait-for';

export interface FaultRow {
  fault: string;
  posted: number;
  stored: number;
  forwarded: number;
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

/**
 * The invariants, from the database and the sink: every posted event stored; every valid,
 * non-duplicate event forwarded; no dedupe key accepted by the sink twice; every failure with a reason.
 */
export async function measure(
  fault: string,
  db: TestDatabase,
  sink: SegmentSink,
  postedMessageIds: string[],
  startedAt: number,
  /** A worker was killed mid-request: the sink may have accepted a batch whose answer it never got. */
  workerCrashed: boolean,
): Promise<FaultRow> {
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
               select dedupe_key from mailjet_events where message_id = any($1::text[]) and status = 'forwarded'
               group by dedupe_key having count(*) > 1) twice) as keys_forwarded_twice
     from mailjet_events where message_id = any($1::text[])`,
    [postedMessageIds],
  );
  const acceptedTimes = new Map<string, number>();
  for (const call of sink.accepted) acceptedTimes.set(call.messageId, (acceptedTimes.get(call.messageId) ?? 0) + 1);
  const acceptedTwice = [...acceptedTimes.values()].filter((times) => times > 1).length;
  return {
    fault,
    posted: postedMessageIds.length,
    stored: row.stored,
    forwarded: row.forwarded,
    duplicates: row.duplicates,
    failed: row.failed,
    lost: postedMessageIds.length - row.stored,
    // Two forwarded rows for one dedupe key is always a defect; a second acceptance by the sink is
    // one too, unless a worker died with that request in flight (then it is resent, same messageId).
    forwardedTwice: row.keys_forwarded_twice + (workerCrashed ? 0 : acceptedTwice),
    resentAfterCrash: workerCrashed ? acceptedTwice : 0,
    failuresWithoutReason: row.without_reason,
    unforwarded: row.keys - row.forwarded - row.failed,
    seconds: Math.round((Date.now() - startedAt) / 1000),
  };
}
