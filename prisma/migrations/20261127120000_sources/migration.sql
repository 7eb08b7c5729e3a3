-- Sources: several Mailjet accounts, each bound to its own destination (SPEC section 8).
CREATE TABLE "sources" (
    "id" SERIAL NOT NULL,
    "slug" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "destination_preset" TEXT NOT NULL,
    "destination_host" TEXT NOT NULL,
    "destination_write_key" TEXT,
    "mailjet_api_key" TEXT,
    "mailjet_api_secret" TEXT,
    "webhook_user" TEXT NOT NULL,
    "webhook_password" TEXT,
    "previous_webhook_password" TEXT,
    "previous_password_expires_at" TIMESTAMPTZ(3),
    "password_rotated_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deleted_at" TIMESTAMPTZ(3),

    CONSTRAINT "sources_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "sources_slug_key" ON "sources"("slug");

-- The environment-configured source, id 1: its secrets stay in the environment. The worker brings
-- its destination up to date from SEGMENT_HOST at every start.
INSERT INTO "sources" ("id", "slug", "name", "destination_preset", "destination_host", "webhook_user")
VALUES (1, 'default', 'default', 'segment-us', 'https://api.segment.io', '');
SELECT setval(pg_get_serial_sequence('sources', 'id'), 1);

-- Every process caches the sources (a callback must not cost a query to find its source): any
-- change to the table tells them at once; they also reload every 30 s.
CREATE FUNCTION notify_sources_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sources_changed', '');
  RETURN NULL;
END $$;
CREATE TRIGGER sources_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "sources"
  FOR EACH STATEMENT EXECUTE FUNCTION notify_sources_changed();

-- Every event carries its source. A constant default is a change of the catalogue only, however
-- many rows the table holds. No foreign key: its check would run once per inserted row on the
-- ingest path, and a source row is never deleted (DELETE /admin/sources marks it deleted).
ALTER TABLE "mailjet_events" ADD COLUMN "source_id" INTEGER NOT NULL DEFAULT 1;

-- Events of a paused source wait `queued` under the job id 'paused', which no job has; resuming
-- the source, or the api's outbox loop, moves them to real jobs. This index holds only them.
CREATE INDEX "mailjet_events_parked_idx" ON "mailjet_events" ("source_id", "id") WHERE "job_id" = 'paused';

-- The counters behind GET /admin/status gain the source.
SELECT fold_event_counts();

ALTER TABLE "event_counts" ADD COLUMN "source_id" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "event_counts" ALTER COLUMN "source_id" DROP DEFAULT;
ALTER TABLE "event_counts" DROP CONSTRAINT "event_counts_pkey";
ALTER TABLE "event_counts" ADD CONSTRAINT "event_counts_pkey" PRIMARY KEY ("source_id", "status", "event_type");

ALTER TABLE "event_count_deltas" ADD COLUMN "source_id" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "event_count_deltas" ALTER COLUMN "source_id" DROP DEFAULT;

ALTER TABLE "forwarded_per_second" ADD COLUMN "source_id" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "forwarded_per_second" ALTER COLUMN "source_id" DROP DEFAULT;
ALTER TABLE "forwarded_per_second" DROP CONSTRAINT "forwarded_per_second_pkey";
ALTER TABLE "forwarded_per_second" ADD CONSTRAINT "forwarded_per_second_pkey" PRIMARY KEY ("source_id", "second");

ALTER TABLE "forwarded_second_deltas" ADD COLUMN "source_id" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "forwarded_second_deltas" ALTER COLUMN "source_id" DROP DEFAULT;

CREATE OR REPLACE FUNCTION count_inserted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (source_id, status, event_type, delta)
  SELECT source_id, status, counted_event_type(event_type), count(*) FROM new_rows GROUP BY 1, 2, 3;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION count_updated_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_count_deltas (source_id, status, event_type, delta)
  SELECT source_id, status, event_type, sum(delta) FROM (
    SELECT source_id, status, counted_event_type(event_type) AS event_type, 1::bigint AS delta FROM new_rows
    UNION ALL
    SELECT source_id, status, counted_event_type(event_type), -1::bigint FROM old_rows
  ) AS changes
  GROUP BY source_id, status, event_type
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
  INSERT INTO event_count_deltas (source_id, status, event_type, delta)
  SELECT source_id, status, counted_event_type(event_type), -count(*) FROM old_rows GROUP BY 1, 2, 3;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION fold_event_counts() RETURNS void LANGUAGE sql AS $$
  WITH moved AS (DELETE FROM event_count_deltas RETURNING source_id, status, event_type, delta)
  INSERT INTO event_counts (source_id, status, event_type, count)
  SELECT source_id, status, event_type, sum(delta) FROM moved GROUP BY source_id, status, event_type
  ON CONFLICT (source_id, status, event_type) DO UPDATE SET count = event_counts.count + excluded.count;

  WITH moved AS (DELETE FROM forwarded_second_deltas RETURNING source_id, second, delta)
  INSERT INTO forwarded_per_second (source_id, second, count)
  SELECT source_id, second, sum(delta) FROM moved GROUP BY source_id, second
  ON CONFLICT (source_id, second) DO UPDATE SET count = forwarded_per_second.count + excluded.count;

  DELETE FROM forwarded_per_second WHERE second < now() - interval '2 hours';
$$;
