-- Mailjet's REST API (SPEC section 9): events may come from a backfill, backfills keep their
-- progress, and enrichment keeps the names it looked up.
CREATE TYPE "event_origin" AS ENUM ('webhook', 'backfill');
-- A constant default: a change of the catalogue only, however many rows the table holds.
ALTER TABLE "mailjet_events" ADD COLUMN "origin" "event_origin" NOT NULL DEFAULT 'webhook';

CREATE TYPE "backfill_status" AS ENUM ('running', 'done', 'failed', 'cancelled');

CREATE TABLE "backfills" (
    "id" BIGSERIAL NOT NULL,
    "source_id" INTEGER NOT NULL,
    "from" TIMESTAMPTZ(0) NOT NULL,
    "to" TIMESTAMPTZ(0) NOT NULL,
    "status" "backfill_status" NOT NULL DEFAULT 'running',
    "messages_total" INTEGER,
    "messages_scanned" INTEGER NOT NULL DEFAULT 0,
    "events_found" INTEGER NOT NULL DEFAULT 0,
    "events_new" INTEGER NOT NULL DEFAULT 0,
    "events_known" INTEGER NOT NULL DEFAULT 0,
    "error" TEXT,
    "lease_owner" TEXT,
    "lease_until" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "backfills_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "backfills_status_idx" ON "backfills"("status");

CREATE TABLE "mailjet_lookups" (
    "kind" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" TEXT,
    "fetched_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "mailjet_lookups_pkey" PRIMARY KEY ("kind","key")
);
