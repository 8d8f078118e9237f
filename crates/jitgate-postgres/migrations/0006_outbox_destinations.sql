-- Per-destination delivery: one outbox row per event and destination, each with its own
-- attempts, backoff and dead letter, so a failing destination never causes a re-delivery to a
-- healthy one. Rows written before this migration have destination '' (every notifier).
ALTER TABLE outbox ADD COLUMN destination text NOT NULL DEFAULT '';
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_event_destination UNIQUE (event_id, destination);
