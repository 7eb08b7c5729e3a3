-- CreateTable
CREATE TABLE "event_counts" (
    "status" "event_status" NOT NULL,
    "event_type" TEXT NOT NULL,
    "count" BIGINT NOT NULL,

    CONSTRAINT "event_counts_pkey" PRIMARY KEY ("status","event_type")
);

-- CreateTable
CREATE TABLE "event_count_deltas" (
    "id" BIGSERIAL NOT NULL,
    "status" "event_status" NOT NULL,
    "event_type" TEXT NOT NULL,
    "delta" BIGINT NOT NULL,

    CONSTRAINT "event_count_deltas_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "forwarded_per_second" (
    "second" TIMESTAMPTZ(0) NOT NULL,
    "count" BIGINT NOT NULL,

    CONSTRAINT "forwarded_per_second_pkey" PRIMARY KEY ("second")
);

-- CreateTable
CREATE TABLE "forwarded_second_deltas" (
    "id" BIGSERIAL NOT NULL,
    "second" TIMESTAMPTZ(0) NOT NULL,
    "delta" BIGINT NOT NULL,

    CONSTRAINT "forwarded_second_deltas_pkey" PRIMARY KEY ("id")
);

-- Counters: statement-level triggers append one delta per (status, type) a statement changes.
CREATE FUNCTION count_inserted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (status, event_type, delta)
  SELECT status, event_type, count(*) FROM new_rows GROUP BY status, event_type;
  RETURN NULL;
END $$;

CREATE FUNCTION count_updated_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (status, event_type, delta)
  SELECT status, event_type, sum(delta) FROM (
    SELECT status, event_type, 1::bigint AS delta FROM new_rows
    UNION ALL
    SELECT status, event_type, -1::bigint FROM old_rows
  ) AS changes
  GROUP BY status, event_type
  HAVING sum(delta) <> 0;

  INSERT INTO forwarded_second_deltas (second, delta)
  SELECT date_trunc('second', n.forwarded_at), count(*)
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE n.status = 'forwarded' AND o.status <> 'forwarded'
  GROUP BY 1;
  RETURN NULL;
END $$;

CREATE FUNCTION count_deleted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (status, event_type, delta)
  SELECT status, event_type, -count(*) FROM old_rows GROUP BY status, event_type;
  RETURN NULL;
END $$;

CREATE FUNCTION reset_event_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM event_count_deltas;
  DELETE FROM event_counts;
  DELETE FROM forwarded_second_deltas;
  DELETE FROM forwarded_per_second;
  RETURN NULL;
END $$;

CREATE TRIGGER mailjet_events_count_insert AFTER INSERT ON mailjet_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_events();
CREATE TRIGGER mailjet_events_count_update AFTER UPDATE ON mailjet_events
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_updated_events();
CREATE TRIGGER mailjet_events_count_delete AFTER DELETE ON mailjet_events
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_deleted_events();
CREATE TRIGGER mailjet_events_count_truncate AFTER TRUNCATE ON mailjet_events
  FOR EACH STATEMENT EXECUTE FUNCTION reset_event_counts();

-- Moves the deltas into the totals; safe to run from several processes at once.
CREATE FUNCTION fold_event_counts() RETURNS void LANGUAGE sql AS $$
  WITH moved AS (DELETE FROM event_count_deltas RETURNING status, event_type, delta)
  INSERT INTO event_counts (status, event_type, count)
  SELECT status, event_type, sum(delta) FROM moved GROUP BY status, event_type
  ON CONFLICT (status, event_type) DO UPDATE SET count = event_counts.count + excluded.count;

  WITH moved AS (DELETE FROM forwarded_second_deltas RETURNING second, delta)
  INSERT INTO forwarded_per_second (second, count)
  SELECT second, sum(delta) FROM moved GROUP BY second
  ON CONFLICT (second) DO UPDATE SET count = forwarded_per_second.count + excluded.count;

  DELETE FROM forwarded_per_second WHERE second < now() - interval '2 hours';
$$;

-- Events stored before this migration.
INSERT INTO event_counts (status, event_type, count)
SELECT status, event_type, count(*) FROM mailjet_events GROUP BY status, event_type;
