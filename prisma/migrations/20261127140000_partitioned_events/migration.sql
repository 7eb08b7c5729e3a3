-- Raw events partitioned by month of receipt (SPEC section 12), so that EVENT_RETENTION_DAYS can
-- drop whole months instead of deleting rows one by one. The table is converted in place: the
-- existing table becomes the first partition as it is (its rows are neither copied nor rewritten;
-- what this costs is one read to check their range and one index build), the new parent takes its
-- name, and the partitions to come are made by the api ahead of time (create_event_partition,
-- ensure_event_partitions below). Nothing writes to the table while this runs.
LOCK TABLE "mailjet_events" IN ACCESS EXCLUSIVE MODE;

-- 1. The status counters gain the month of receipt, so that dropping a month's partition can
-- subtract its events from them without counting its rows (a count under the lock the drop needs
-- would stall ingest for as long as it reads the partition). Counts kept so far are of events of
-- the first partition, whatever their month: '-infinity' places them there.
SELECT fold_event_counts();

ALTER TABLE "event_counts" ADD COLUMN "received_month" DATE NOT NULL DEFAULT '-infinity';
ALTER TABLE "event_counts" ALTER COLUMN "received_month" DROP DEFAULT;
ALTER TABLE "event_counts" DROP CONSTRAINT "event_counts_pkey";
ALTER TABLE "event_counts" ADD CONSTRAINT "event_counts_pkey" PRIMARY KEY ("source_id", "status", "event_type", "received_month");

ALTER TABLE "event_count_deltas" ADD COLUMN "received_month" DATE NOT NULL DEFAULT '-infinity';
ALTER TABLE "event_count_deltas" ALTER COLUMN "received_month" DROP DEFAULT;

-- Months are UTC months, like the partitions' bounds.
CREATE FUNCTION event_month(received_at timestamptz) RETURNS date LANGUAGE sql IMMUTABLE AS $$
  SELECT date_trunc('month', received_at AT TIME ZONE 'UTC')::date
$$;

CREATE OR REPLACE FUNCTION count_inserted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (source_id, status, event_type, received_month, delta)
  SELECT source_id, status, counted_event_type(event_type), event_month(received_at), count(*) FROM new_rows GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION count_updated_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (source_id, status, event_type, received_month, delta)
  SELECT source_id, status, event_type, received_month, sum(delta) FROM (
    SELECT source_id, status, counted_event_type(event_type) AS event_type, event_month(received_at) AS received_month, 1::bigint AS delta FROM new_rows
    UNION ALL
    SELECT source_id, status, counted_event_type(event_type), event_month(received_at), -1::bigint FROM old_rows
  ) AS changes
  GROUP BY source_id, status, event_type, received_month
  HAVING sum(delta) <> 0;

  INSERT INTO forwarded_second_deltas (source_id, second, delta)
  SELECT n.source_id, date_trunc('second', n.forwarded_at), count(*)
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE n.status = 'forwarded' AND o.status <> 'forwarded'
  GROUP BY 1, 2;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION count_deleted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (source_id, status, event_type, received_month, delta)
  SELECT source_id, status, counted_event_type(event_type), event_month(received_at), -count(*) FROM old_rows GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION fold_event_counts() RETURNS void LANGUAGE sql AS $$
  WITH moved AS (DELETE FROM event_count_deltas RETURNING source_id, status, event_type, received_month, delta)
  INSERT INTO event_counts (source_id, status, event_type, received_month, count)
  SELECT source_id, status, event_type, received_month, sum(delta) FROM moved GROUP BY 1, 2, 3, 4
  ON CONFLICT (source_id, status, event_type, received_month) DO UPDATE SET count = event_counts.count + excluded.count;

  WITH moved AS (DELETE FROM forwarded_second_deltas RETURNING source_id, second, delta)
  INSERT INTO forwarded_per_second (source_id, second, count)
  SELECT source_id, second, sum(delta) FROM moved GROUP BY source_id, second
  ON CONFLICT (source_id, second) DO UPDATE SET count = forwarded_per_second.count + excluded.count;

  DELETE FROM forwarded_per_second WHERE second < now() - interval '2 hours';
$$;

-- 2. The table as it is becomes the first partition. A partitioned table's primary key must hold
-- the partition key, so it is (id, received_at); id alone stays unique because only the sequence
-- mailjet_events_id_seq assigns it (no statement here, nor in the code, writes an id), and every
-- lookup by id still uses the key's index, id first.
DROP TRIGGER "mailjet_events_count_insert" ON "mailjet_events";
DROP TRIGGER "mailjet_events_count_update" ON "mailjet_events";
DROP TRIGGER "mailjet_events_count_delete" ON "mailjet_events";
DROP TRIGGER "mailjet_events_count_truncate" ON "mailjet_events";

ALTER TABLE "mailjet_events" RENAME TO "mailjet_events_unpartitioned";
ALTER INDEX "mailjet_events_status_id_idx" RENAME TO "mailjet_events_unpartitioned_status_id_idx";
ALTER INDEX "mailjet_events_email_id_idx" RENAME TO "mailjet_events_unpartitioned_email_id_idx";
ALTER INDEX "mailjet_events_message_id_idx" RENAME TO "mailjet_events_unpartitioned_message_id_idx";
ALTER INDEX "mailjet_events_event_time_idx" RENAME TO "mailjet_events_unpartitioned_event_time_idx";
ALTER INDEX "mailjet_events_parked_idx" RENAME TO "mailjet_events_unpartitioned_source_id_id_idx";

CREATE UNIQUE INDEX "mailjet_events_unpartitioned_pkey_new" ON "mailjet_events_unpartitioned" ("id", "received_at");
ALTER TABLE "mailjet_events_unpartitioned" DROP CONSTRAINT "mailjet_events_pkey";
ALTER TABLE "mailjet_events_unpartitioned" ADD CONSTRAINT "mailjet_events_unpartitioned_pkey" PRIMARY KEY USING INDEX "mailjet_events_unpartitioned_pkey_new";

-- The columns, defaults and indexes of the table before, in the same order.
CREATE TABLE "mailjet_events" (
    "id" BIGINT NOT NULL DEFAULT nextval('mailjet_events_id_seq'),
    "payload" JSON NOT NULL,
    "event_type" TEXT NOT NULL,
    "event_time" TIMESTAMPTZ(0),
    "email" TEXT,
    "message_id" TEXT,
    "message_guid" TEXT,
    "dedupe_key" TEXT,
    "status" "event_status" NOT NULL DEFAULT 'received',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "segment_message_id" TEXT,
    "duplicate_of" BIGINT,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "queued_at" TIMESTAMPTZ(3),
    "forwarded_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "job_id" TEXT,
    "source_id" INTEGER NOT NULL DEFAULT 1,
    "origin" "event_origin" NOT NULL DEFAULT 'webhook',

    CONSTRAINT "mailjet_events_pkey" PRIMARY KEY ("id", "received_at")
) PARTITION BY RANGE ("received_at");

-- The sequence belongs to the new table (it would go with the first partition when that is dropped).
ALTER SEQUENCE "mailjet_events_id_seq" OWNED BY "mailjet_events"."id";

-- Matching indexes of the first partition are attached to these, not built again.
CREATE INDEX "mailjet_events_status_id_idx" ON "mailjet_events"("status", "id");
CREATE INDEX "mailjet_events_email_id_idx" ON "mailjet_events"("email", "id");
CREATE INDEX "mailjet_events_message_id_idx" ON "mailjet_events"("message_id");
CREATE INDEX "mailjet_events_event_time_idx" ON "mailjet_events"("event_time");
CREATE INDEX "mailjet_events_parked_idx" ON "mailjet_events" ("source_id", "id") WHERE "job_id" = 'paused';

-- The first partition covers every event stored so far and the rest of this month (UTC): from
-- MINVALUE, or from this month when the table is empty (a new installation), up to the next month,
-- or past the newest event's month if a clock ahead put one there. A CHECK constraint proves the
-- range with one read of the rows, and saves ATTACH from reading them again.
DO $$
DECLARE
  month_start timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  upper_bound timestamptz := (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
  lower_bound text;
  partition_name text;
  suffix text;
BEGIN
  IF EXISTS (SELECT 1 FROM mailjet_events_unpartitioned) THEN
    lower_bound := 'MINVALUE';
    BEGIN
      EXECUTE format('ALTER TABLE mailjet_events_unpartitioned ADD CONSTRAINT mailjet_events_unpartitioned_range CHECK (received_at < %L)', upper_bound);
    EXCEPTION WHEN check_violation THEN
      SELECT (date_trunc('month', max(received_at) AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
      INTO upper_bound FROM mailjet_events_unpartitioned;
      EXECUTE format('ALTER TABLE mailjet_events_unpartitioned ADD CONSTRAINT mailjet_events_unpartitioned_range CHECK (received_at < %L)', upper_bound);
    END;
    partition_name := 'mailjet_events_before_' || to_char(upper_bound AT TIME ZONE 'UTC', 'YYYY_MM');
  ELSE
    lower_bound := quote_literal(month_start);
    EXECUTE format('ALTER TABLE mailjet_events_unpartitioned ADD CONSTRAINT mailjet_events_unpartitioned_range CHECK (received_at >= %L AND received_at < %L)',
                   month_start, upper_bound);
    partition_name := 'mailjet_events_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
  END IF;

  EXECUTE format('ALTER TABLE mailjet_events ATTACH PARTITION mailjet_events_unpartitioned FOR VALUES FROM (%s) TO (%L)', lower_bound, upper_bound);
  ALTER TABLE mailjet_events_unpartitioned DROP CONSTRAINT mailjet_events_unpartitioned_range;

  -- The names PostgreSQL gives the indexes of the partitions it creates.
  EXECUTE format('ALTER TABLE mailjet_events_unpartitioned RENAME TO %I', partition_name);
  FOREACH suffix IN ARRAY ARRAY['pkey', 'status_id_idx', 'email_id_idx', 'message_id_idx', 'event_time_idx', 'source_id_id_idx'] LOOP
    EXECUTE format('ALTER INDEX %I RENAME TO %I', 'mailjet_events_unpartitioned_' || suffix, partition_name || '_' || suffix);
  END LOOP;
END $$;

-- An event whose month has no partition (a clock far off, or a service that was not running to
-- make it) lands here rather than failing its callback; create_event_partition moves it out.
CREATE TABLE "mailjet_events_default" PARTITION OF "mailjet_events" DEFAULT;

-- The counters' triggers, on the partitioned table: statement-level triggers with transition
-- tables fire once per statement on the table the statement names, and their transition tables
-- hold the rows of every partition it touched (PostgreSQL 10 and later). Statements on a partition
-- by name fire none of them: only the functions below do that, to move rows between partitions.
CREATE TRIGGER mailjet_events_count_insert AFTER INSERT ON mailjet_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_events();
CREATE TRIGGER mailjet_events_count_update AFTER UPDATE ON mailjet_events
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_updated_events();
CREATE TRIGGER mailjet_events_count_delete AFTER DELETE ON mailjet_events
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_deleted_events();
CREATE TRIGGER mailjet_events_count_truncate AFTER TRUNCATE ON mailjet_events
  FOR EACH STATEMENT EXECUTE FUNCTION reset_event_counts();

-- 3. Partition upkeep, run by the api (at start and daily) and callable by hand. One caller at a
-- time changes partitions: they all take this advisory lock first.
CREATE FUNCTION event_partitions_lock_key() RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT 7021946170913554433::bigint  -- any fixed number; no other lock of this database uses it
$$;

-- The partitions with their bounds: [from_time, to_time), -infinity for MINVALUE; the default
-- partition has none. Read from the catalogue, printed and parsed back in UTC.
CREATE FUNCTION event_partitions()
RETURNS TABLE (name text, from_time timestamptz, to_time timestamptz, is_default boolean)
LANGUAGE sql STABLE SET timezone = 'UTC' SET datestyle = 'ISO, YMD' AS $$
  SELECT c.relname::text,
         CASE b.bounds[1] WHEN 'MINVALUE' THEN '-infinity' ELSE btrim(b.bounds[1], '''')::timestamptz END,
         CASE b.bounds[2] WHEN 'MAXVALUE' THEN 'infinity' ELSE btrim(b.bounds[2], '''')::timestamptz END,
         pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  CROSS JOIN LATERAL (
    SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \((.+)\) TO \((.+)\)$') AS bounds
  ) b
  WHERE i.inhparent = 'mailjet_events'::regclass
  ORDER BY 2 NULLS LAST, 1
$$;

-- Creates the partition of the UTC month that holds month_start, mailjet_events_YYYY_MM, unless a
-- partition already covers part of that month (then answers null). Events of that month that sit in
-- the default partition move into it first: PostgreSQL refuses a partition while the default holds
-- rows of its range. They move between partitions by name, so no counter trigger fires, and their
-- counts stay right (they keep their month). The new table is attached rather than created as a
-- partition, which locks the parent in SHARE UPDATE EXCLUSIVE mode only: reads and writes go on.
CREATE FUNCTION create_event_partition(month_start timestamptz) RETURNS text
LANGUAGE plpgsql SET timezone = 'UTC' AS $$
DECLARE
  month_from timestamptz := date_trunc('month', month_start);
  month_to timestamptz := date_trunc('month', month_start) + interval '1 month';
  partition_name text := 'mailjet_events_' || to_char(date_trunc('month', month_start), 'YYYY_MM');
  default_partition text;
BEGIN
  PERFORM pg_advisory_xact_lock(event_partitions_lock_key());
  IF EXISTS (SELECT 1 FROM event_partitions() p WHERE NOT p.is_default AND p.from_time < month_to AND p.to_time > month_from) THEN
    RETURN NULL;
  END IF;
  -- The parent first, then the default partition: the order in which PostgreSQL locks them itself.
  LOCK TABLE ONLY mailjet_events IN SHARE UPDATE EXCLUSIVE MODE;
  EXECUTE format('CREATE TABLE %I (LIKE mailjet_events INCLUDING DEFAULTS)', partition_name);
  SELECT p.name INTO default_partition FROM event_partitions() p WHERE p.is_default;
  IF default_partition IS NOT NULL THEN
    -- No event can land in the default partition between the move and the attach.
    EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', default_partition);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE received_at >= $1 AND received_at < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
                   default_partition, partition_name)
      USING month_from, month_to;
  END IF;
  EXECUTE format('ALTER TABLE mailjet_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', partition_name, month_from, month_to);
  RETURN partition_name;
END $$;

-- The partitions of this month and of the next months_ahead months; answers those it created.
CREATE FUNCTION ensure_event_partitions(months_ahead int) RETURNS SETOF text
LANGUAGE plpgsql SET timezone = 'UTC' AS $$
DECLARE
  created text;
BEGIN
  IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
    RAISE EXCEPTION 'months_ahead must be between 0 and 120, not %', months_ahead;
  END IF;
  FOR i IN 0..months_ahead LOOP
    created := create_event_partition(date_trunc('month', now()) + make_interval(months => i));
    IF created IS NOT NULL THEN
      RETURN NEXT created;
    END IF;
  END LOOP;
END $$;

-- Drops the oldest partition whose events were all received before older_than, unless it holds a
-- `received` or `queued` event (those are skipped); answers its name and how many events went with
-- it, or no row. One partition per call, so that each drop holds its locks briefly.
-- - Dedupe keys are kept as long as the events they protect: those owned by the partition's events
--   go with them, except a key that a `received` or `queued` event elsewhere still carries (a late
--   delivery of the same event, which would otherwise be forwarded again).
-- - Dropping a table fires no DELETE trigger: the partition's counts, which the counters keep per
--   month of receipt, are subtracted from them in the same transaction, without reading its rows.
-- - The parent is locked before the partition (the order DROP TABLE uses), once the keys are gone,
--   and the partition is checked again under that lock: it is the only window in which ingest
--   waits, and it lasts a few index lookups.
CREATE FUNCTION drop_expired_event_partition(older_than timestamptz)
RETURNS TABLE (dropped text, events bigint)
LANGUAGE plpgsql SET timezone = 'UTC' AS $$
DECLARE
  p record;
  pending boolean;
  pending_query text;
BEGIN
  PERFORM pg_advisory_xact_lock(event_partitions_lock_key());
  FOR p IN
    SELECT * FROM event_partitions() e WHERE NOT e.is_default AND e.to_time <= older_than ORDER BY e.to_time
  LOOP
    pending_query := format('SELECT EXISTS (SELECT 1 FROM %I WHERE status IN (''received'', ''queued''))', p.name);
    EXECUTE pending_query INTO pending;
    CONTINUE WHEN pending;

    -- The keys that pending events carry, in a table of their own with an index and statistics:
    -- joined straight to the events, whose statistics lag behind a backlog (millions of `queued`
    -- events during an outage), the planner chose a nested loop over them for each key of the month.
    IF to_regclass('pg_temp.pending_dedupe_keys') IS NOT NULL THEN
      DROP TABLE pg_temp.pending_dedupe_keys;
    END IF;
    CREATE TEMP TABLE pending_dedupe_keys ON COMMIT DROP AS
      SELECT DISTINCT dedupe_key FROM mailjet_events WHERE status IN ('received', 'queued') AND dedupe_key IS NOT NULL;
    CREATE UNIQUE INDEX ON pending_dedupe_keys (dedupe_key);
    ANALYZE pending_dedupe_keys;
    EXECUTE format(
      'DELETE FROM dedupe_keys k USING %I e
       WHERE k.dedupe_key = e.dedupe_key AND k.event_id = e.id
         AND NOT EXISTS (SELECT 1 FROM pg_temp.pending_dedupe_keys q WHERE q.dedupe_key = k.dedupe_key)',
      p.name);

    LOCK TABLE ONLY mailjet_events IN ACCESS EXCLUSIVE MODE;
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', p.name);
    EXECUTE pending_query INTO pending;
    IF pending THEN
      RAISE EXCEPTION 'partition % got a received or queued event while it was being dropped; nothing was dropped', p.name
        USING ERRCODE = 'serialization_failure';
    END IF;

    -- What the counters hold for the partition's months, folded or not: under the lock, nothing adds to it.
    WITH subtracted AS (
      INSERT INTO event_count_deltas (source_id, status, event_type, received_month, delta)
      SELECT c.source_id, c.status, c.event_type, c.received_month, -sum(c.n) FROM (
        SELECT source_id, status, event_type, received_month, count AS n FROM event_counts
        WHERE received_month >= p.from_time::date AND received_month < p.to_time::date
        UNION ALL
        SELECT source_id, status, event_type, received_month, delta FROM event_count_deltas
        WHERE received_month >= p.from_time::date AND received_month < p.to_time::date
      ) c
      GROUP BY 1, 2, 3, 4
      HAVING sum(c.n) <> 0
      RETURNING delta
    )
    SELECT coalesce(-sum(delta), 0)::bigint INTO events FROM subtracted;
    PERFORM fold_event_counts();
    DELETE FROM event_counts WHERE received_month >= p.from_time::date AND received_month < p.to_time::date AND count = 0;

    EXECUTE format('DROP TABLE %I', p.name);
    dropped := p.name;
    RETURN NEXT;
    RETURN;
  END LOOP;
END $$;

SELECT ensure_event_partitions(3);
