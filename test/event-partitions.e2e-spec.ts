import { SourceDirectory } from '@app/sources';
import { OutboxRecoveryService } from '../apps/api/src/outbox/outbox-recovery.service';
import { EventPartitionsService, MONTHS_AHEAD } from '../apps/api/src/partitions/event-partitions.service';
import { ApiHarness } from './support/api-harness';
import { dropDatabase, FIRST_EVENT_ID, migrateDatabase, ownDatabaseUrl, TestDatabase } from './support/database';
import { testConfig } from './support/test-env';

/** The UTC month `offset` months from this one: its partition's name, its first instant, and a time inside it. */
function month(offset: number): { name: string; start: Date; inside: string } {
  const now = new Date();
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
  const name = `mailjet_events_${start.getUTCFullYear()}_${String(start.getUTCMonth() + 1).padStart(2, '0')}`;
  return { name, start, inside: new Date(start.getTime() + 9 * 86_400_000 + 3_600_000).toISOString() };
}

interface StoredRow {
  status: 'received' | 'queued' | 'forwarded' | 'duplicate' | 'failed' | 'invalid';
  receivedAt: string;
  type?: string;
  sourceId?: number;
  /** The event's dedupe key; one of its own unless given (null for an invalid event). */
  dedupeKey?: string | null;
  /** It owns its dedupe key (a row in dedupe_keys), as a forwarded or failed event does. */
  claim?: boolean;
  jobId?: string;
  duplicateOf?: string;
}

describe('mailjet_events partitions: made ahead, the default partition, retention (api + PostgreSQL + Redis, a database of its own)', () => {
  const url = ownDatabaseUrl('partitions');
  let db: TestDatabase;
  let api: ApiHarness;
  let partitions: EventPartitionsService;
  let messageNumber = 0;

  /** Stores an event as it would be after its life so far, at `receivedAt`; answers its id. */
  async function store(row: StoredRow): Promise<string> {
    const messageId = (19421777396190490n + BigInt(++messageNumber)).toString();
    const type = row.type ?? 'open';
    const dedupeKey = row.dedupeKey !== undefined ? row.dedupeKey : row.status === 'invalid' ? null : `${messageId}|${type}|1433103519`;
    const payload = `{"event":"${type}","time":1433103519,"MessageID":${messageId},"email":"e${messageNumber}@example.com"}`;
    const reason = row.status === 'failed' ? 'Segment answered 400: bad' : row.status === 'invalid' ? 'no usable time' : null;
    const [{ id }] = await db.query<{ id: string }>(
      `insert into mailjet_events (payload, event_type, event_time, email, message_id, dedupe_key, status, received_at, source_id, job_id,
                                   duplicate_of, last_error)
       values ($1::json, $2, to_timestamp(1433103519), $3, $4, $5, $6::event_status, $7, $8, $9, $10, $11) returning id::text`,
      [payload, type, `e${messageNumber}@example.com`, messageId, dedupeKey, row.status, row.receivedAt, row.sourceId ?? 1, row.jobId ?? null,
        row.duplicateOf ?? null, reason],
    );
    if (row.claim) await db.query('insert into dedupe_keys (dedupe_key, event_id) values ($1, $2)', [dedupeKey, id]);
    return id;
  }

  const partitionOf = async (id: string) =>
    (await db.query<{ partition: string }>('select tableoid::regclass::text as partition from mailjet_events where id = $1', [id]))[0]?.partition;
  const partitionNames = async () => (await db.query<{ name: string }>('select name from event_partitions()')).map((row) => row.name);
  const eventIds = async () => (await db.events()).map((event) => event.id);

  /** The maintained counters against a count of the rows, per source, status, type and month of receipt. */
  async function expectCountersToMatchRows(): Promise<void> {
    await db.query('select fold_event_counts()');
    const counters = await db.query(
      `select source_id, status::text, event_type, received_month::text, sum(count)::int as n from event_counts
       group by 1, 2, 3, 4 having sum(count) <> 0 order by 1, 2, 3, 4`,
    );
    const rows = await db.query(
      `select source_id, status::text, counted_event_type(event_type) as event_type, event_month(received_at)::text as received_month,
              count(*)::int as n
       from mailjet_events group by 1, 2, 3, 4 order by 1, 2, 3, 4`,
    );
    expect(counters).toEqual(rows);
    const byStatus = Object.fromEntries(
      (await db.query<{ status: string; n: number }>('select status::text, count(*)::int as n from mailjet_events group by 1')).map((row) => [
        row.status,
        row.n,
      ]),
    );
    const status = (await api.admin('GET', '/admin/status')).json();
    expect(status.events.byStatus).toEqual({ received: 0, queued: 0, forwarded: 0, duplicate: 0, failed: 0, invalid: 0, ...byStatus });
  }

  /** Every event of a GET /admin/events query (`status=failed`, or '' for all), `limit` at a time: the ids, newest first. */
  async function listedIds(query: string, limit: number): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const response = await api.admin('GET', `/admin/events?${query}${query ? '&' : ''}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.statusCode).toBe(200);
      const page = response.json();
      ids.push(...page.items.map((item: { id: string }) => item.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return ids;
  }

  beforeAll(async () => {
    await migrateDatabase(url);
    db = new TestDatabase(url);
    api = await ApiHarness.start(testConfig({ DATABASE_URL: url, EVENT_RETENTION_DAYS: '30' }));
    partitions = api.app.get(EventPartitionsService);
    // The pass the api starts with is over (or this is it).
    await partitions.upkeep();
  });
  beforeEach(() => api.reset(db));
  afterAll(async () => {
    await api?.close();
    await db?.close();
    await dropDatabase(url);
  });

  it('starts a new installation with the partition of this month, those of the next three and the default one', async () => {
    const expected = Array.from({ length: MONTHS_AHEAD + 1 }, (_, offset) => month(offset).name);
    expect(await partitionNames()).toEqual([...expected, 'mailjet_events_default']);
    // The id sequence belongs to the partitioned table: the reset of the tests (and anyone's) finds it.
    expect(await db.query('select pg_get_serial_sequence($1, $2) as sequence', ['mailjet_events', 'id'])).toEqual([
      { sequence: 'public.mailjet_events_id_seq' },
    ]);
  });

  it('makes a missing partition of the coming months, one api process at a time', async () => {
    const missing = month(2);
    await db.query(`drop table ${missing.name}`);

    // Another process holds the partitions' lock: this one leaves the work to it.
    const other = await db.pool.connect();
    try {
      await other.query('begin');
      await other.query('select pg_advisory_xact_lock(event_partitions_lock_key())');
      expect(await partitions.upkeep()).toEqual({ busy: true, created: [], dropped: [], kept: [] });
      expect(await partitionNames()).not.toContain(missing.name);
    } finally {
      await other.query('rollback');
      other.release();
    }

    expect(await partitions.upkeep()).toEqual({ busy: false, created: [missing.name], dropped: [], kept: [] });
    expect(await partitionNames()).toContain(missing.name);
    // Once there, nothing to do.
    expect((await partitions.upkeep()).created).toEqual([]);
  });

  it('keeps an event whose month has no partition in the default one, and moves it out when its month gets one', async () => {
    const [soon, later, muchLater] = [month(MONTHS_AHEAD), month(7), month(8)];
    const stored = {
      past: await store({ status: 'invalid', receivedAt: '2020-02-02T10:00:00Z' }),
      later: await store({ status: 'forwarded', receivedAt: later.inside, claim: true }),
      laterToo: await store({ status: 'failed', receivedAt: later.inside, type: 'click', claim: true }),
      muchLater: await store({ status: 'duplicate', receivedAt: muchLater.inside }),
    };
    for (const id of Object.values(stored)) expect(await partitionOf(id)).toBe('mailjet_events_default');
    const before = await db.events();

    // A month's partition cannot be made while the default partition holds rows of it: they move first.
    expect(await db.query('select create_event_partition($1) as name', [later.start])).toEqual([{ name: later.name }]);
    expect(await partitionOf(stored.later)).toBe(later.name);
    expect(await partitionOf(stored.laterToo)).toBe(later.name);
    expect(await partitionOf(stored.muchLater)).toBe('mailjet_events_default');
    expect(await partitionOf(stored.past)).toBe('mailjet_events_default');
    // Moved, not changed: same ids, same payload text, same statuses; a month made twice is made once.
    expect(await db.events()).toEqual(before);
    expect(await db.query('select create_event_partition($1) as name', [later.inside])).toEqual([{ name: null }]);

    // The service's own pass does the same for the months it makes ahead.
    await db.query(`drop table ${soon.name}`);
    const soonEvent = await store({ status: 'queued', receivedAt: soon.inside, jobId: 'ingest-9-0' });
    expect(await partitionOf(soonEvent)).toBe('mailjet_events_default');
    expect((await partitions.upkeep()).created).toEqual([soon.name]);
    expect(await partitionOf(soonEvent)).toBe(soon.name);

    await expectCountersToMatchRows();
    // The admin API finds them wherever they are.
    const all = [stored.past, stored.later, stored.laterToo, stored.muchLater, soonEvent];
    expect(await listedIds('', 2)).toEqual([...all].reverse());
    for (const id of all) {
      const detail = await api.admin('GET', `/admin/events/${id}`);
      expect(detail.statusCode).toBe(200);
      expect(detail.json().id).toBe(id);
    }
  });

  it('drops months past EVENT_RETENTION_DAYS with their dedupe keys and counts, but never one holding a received or queued event', async () => {
    const [withQueued, expired, withReceived, current] = [month(-5), month(-4), month(-3), month(0)];
    for (const { start } of [withQueued, expired, withReceived]) await db.query('select create_event_partition($1)', [start]);
    const [{ id: second }] = await db.query<{ id: number }>(
      `insert into sources (slug, name, destination_preset, destination_host, webhook_user)
       values ('partitionsecond1', 'second', 'segment-us', 'https://api.segment.io', 'second') returning id`,
    );
    await api.app.get(SourceDirectory).reload();
    // The recovery loop would queue the received event; it must stay `received` here.
    await api.app.get(OutboxRecoveryService).onModuleDestroy();

    const queued = await store({ status: 'queued', receivedAt: withQueued.inside, jobId: 'ingest-1-0' });
    const beside = await store({ status: 'forwarded', receivedAt: withQueued.inside, claim: true });
    const forwarded = await store({ status: 'forwarded', receivedAt: expired.inside, claim: true });
    const gone = [
      forwarded,
      await store({ status: 'forwarded', receivedAt: expired.inside, sourceId: second, type: 'click', claim: true }),
      await store({ status: 'failed', receivedAt: expired.inside, type: 'bounce', claim: true }),
      await store({ status: 'invalid', receivedAt: expired.inside, type: 'nonsense' }),
    ];
    const [{ dedupe_key: forwardedKey }] = await db.query<{ dedupe_key: string }>('select dedupe_key from mailjet_events where id = $1', [forwarded]);
    gone.push(await store({ status: 'duplicate', receivedAt: expired.inside, dedupeKey: forwardedKey, duplicateOf: forwarded }));
    // A late delivery of an expired event, still on its way: the key that makes it a duplicate stays.
    const protectedOwner = await store({ status: 'forwarded', receivedAt: expired.inside, claim: true });
    gone.push(protectedOwner);
    const [{ dedupe_key: protectedKey }] = await db.query<{ dedupe_key: string }>('select dedupe_key from mailjet_events where id = $1', [
      protectedOwner,
    ]);
    const received = await store({ status: 'received', receivedAt: withReceived.inside });
    const secondKept = await store({ status: 'forwarded', receivedAt: withReceived.inside, sourceId: second, claim: true });
    const lateDelivery = await store({ status: 'queued', receivedAt: current.inside, dedupeKey: protectedKey, jobId: 'ingest-2-0' });
    const recent = await store({ status: 'forwarded', receivedAt: new Date().toISOString(), claim: true });
    const keysBefore = await db.query<{ dedupe_key: string; event_id: string }>('select dedupe_key, event_id::text from dedupe_keys order by 1');
    const kept = (await eventIds()).filter((id) => !gone.includes(id));

    expect(await partitions.upkeep()).toEqual({
      busy: false,
      created: [],
      dropped: [{ partition: expired.name, events: gone.length }],
      kept: [withQueued.name, withReceived.name],
    });
    expect(await partitionNames()).not.toContain(expired.name);
    expect(await eventIds()).toEqual(kept);
    expect(await db.query('select dedupe_key, event_id::text from dedupe_keys order by 1')).toEqual(
      keysBefore.filter((key) => !gone.includes(key.event_id) || key.dedupe_key === protectedKey),
    );
    await expectCountersToMatchRows();
    expect((await api.admin('GET', '/admin/status?source=partitionsecond1')).json().events.total).toBe(1);
    expect(await listedIds('', 3)).toEqual([...kept].reverse());
    expect(await listedIds('status=forwarded', 1)).toEqual([recent, secondKept, beside]);
    expect((await api.admin('GET', `/admin/events/${received}`)).json().status).toBe('received');
    expect((await api.admin('GET', `/admin/events/${forwarded}`)).statusCode).toBe(404);

    // Once their events have moved on, those months go too, oldest first.
    await db.query(`update mailjet_events set status = 'forwarded', forwarded_at = now() where id = $1`, [queued]);
    await db.query(`update mailjet_events set status = 'failed', last_error = 'given up' where id = $1`, [received]);
    expect(await partitions.upkeep()).toMatchObject({
      dropped: [
        { partition: withQueued.name, events: 2 },
        { partition: withReceived.name, events: 2 },
      ],
      kept: [],
    });
    expect(await eventIds()).toEqual([lateDelivery, recent]);
    expect(await db.query('select dedupe_key, event_id::text from dedupe_keys order by 1')).toEqual(
      keysBefore.filter((key) => [recent, protectedOwner].includes(key.event_id)),
    );
    await expectCountersToMatchRows();
    expect((await api.admin('GET', '/admin/status?source=partitionsecond1')).json().events.total).toBe(0);
  });

  it('empties every partition on the tests’ reset, and starts the ids again', async () => {
    for (const receivedAt of [month(0).inside, month(1).inside, '2019-05-05T05:05:05Z']) await store({ status: 'forwarded', receivedAt, claim: true });
    expect(await db.count()).toBe(3);
    await db.reset();
    for (const name of await partitionNames()) {
      expect(await db.query(`select count(*)::int as n from ${name}`)).toEqual([{ n: 0 }]);
    }
    expect(await db.query('select (select count(*) from event_counts)::int as counts, (select count(*) from event_count_deltas)::int as deltas')).toEqual([
      { counts: 0, deltas: 0 },
    ]);
    expect(await store({ status: 'forwarded', receivedAt: new Date().toISOString() })).toBe(FIRST_EVENT_ID.toString());
  });
});
