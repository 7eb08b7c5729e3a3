-- DropIndex
DROP INDEX "mailjet_events_status_received_at_idx";

-- DropIndex
DROP INDEX "mailjet_events_event_type_id_idx";

-- DropIndex
DROP INDEX "mailjet_events_dedupe_key_idx";
