-- One BullMQ job per stored group of events: each event row names the job that carries it, and
-- only that job may forward it (a requeue or the sweep of lost jobs moves it to a job of its own).
ALTER TABLE "mailjet_events" ADD COLUMN "job_id" TEXT;

-- Job numbers: job ids are '<origin>-<number>[-<part>]', written on the rows before the job is added.
CREATE SEQUENCE "mailjet_job_seq";

-- Events queued before this migration have a job of one event each, 'event-<id>', which the new
-- worker still takes.
UPDATE "mailjet_events" SET "job_id" = 'event-' || "id" WHERE "status" = 'queued';
