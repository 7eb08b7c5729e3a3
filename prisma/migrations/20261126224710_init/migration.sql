-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "event_status" AS ENUM ('received', 'queued', 'forwarded', 'duplicate', 'failed', 'invalid');

-- CreateTable
CREATE TABLE "mailjet_events" (
    "id" BIGSERIAL NOT NULL,
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

    CONSTRAINT "mailjet_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "mailjet_events_status_id_idx" ON "mailjet_events"("status", "id");

-- CreateIndex
CREATE INDEX "mailjet_events_status_received_at_idx" ON "mailjet_events"("status", "received_at");

-- CreateIndex
CREATE INDEX "mailjet_events_event_type_id_idx" ON "mailjet_events"("event_type", "id");

-- CreateIndex
CREATE INDEX "mailjet_events_email_id_idx" ON "mailjet_events"("email", "id");

-- CreateIndex
CREATE INDEX "mailjet_events_message_id_idx" ON "mailjet_events"("message_id");

-- CreateIndex
CREATE INDEX "mailjet_events_event_time_idx" ON "mailjet_events"("event_time");

-- CreateIndex
CREATE INDEX "mailjet_events_dedupe_key_idx" ON "mailjet_events"("dedupe_key");
