-- Delivery attempts, backoff and dead letters for the outbox; expiry reminders for grants.
ALTER TABLE outbox
    ADD COLUMN attempts        int         NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN last_error      text,
    ADD COLUMN dead_at         timestamptz;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (seq) WHERE done_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_dead ON outbox (seq) WHERE dead_at IS NOT NULL;

ALTER TABLE grants ADD COLUMN reminded boolean NOT NULL DEFAULT false;
CREATE INDEX grants_reminders ON grants (expires_at) WHERE state = 'active' AND NOT reminded;
