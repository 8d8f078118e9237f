-- jitgate schema, version 1. Runs inside the schema named in PgStoreOptions (search_path).

-- Requests: the full AccessRequest as JSON, plus the columns queries filter on.
CREATE TABLE requests (
    id            uuid PRIMARY KEY,
    principal     text        NOT NULL,
    scope_key     text        NOT NULL,
    state         text        NOT NULL,
    version       bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    deadline      timestamptz NOT NULL,
    claimed_until timestamptz,
    body          jsonb       NOT NULL
);
-- At most one pending request per principal and scope: a constraint, not a check-then-insert.
CREATE UNIQUE INDEX requests_one_pending ON requests (principal, scope_key) WHERE state = 'pending';
CREATE INDEX requests_pending_order ON requests (created_at, id) WHERE state = 'pending';
CREATE INDEX requests_deadline ON requests (deadline) WHERE state = 'pending';

CREATE TABLE grants (
    id            uuid PRIMARY KEY,
    request_id    uuid        NOT NULL REFERENCES requests (id),
    principal     text        NOT NULL,
    scope_key     text        NOT NULL,
    state         text        NOT NULL,
    version       bigint      NOT NULL,
    not_before    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    awaits_ack    boolean     NOT NULL,
    -- The transaction that last changed the row: the change feed reads rows changed by
    -- transactions at or after its last cutoff (see the crate docs).
    change_xid    xid8        NOT NULL DEFAULT pg_current_xact_id(),
    claimed_until timestamptz,
    body          jsonb       NOT NULL
);
CREATE INDEX grants_live ON grants (principal, scope_key) WHERE state IN ('scheduled', 'active');
CREATE INDEX grants_live_by_principal ON grants (principal, id) WHERE state IN ('scheduled', 'active');
CREATE INDEX grants_expiry ON grants (expires_at) WHERE state IN ('scheduled', 'active');
CREATE INDEX grants_start ON grants (not_before) WHERE state = 'scheduled';
CREATE INDEX grants_unacknowledged ON grants (id) WHERE awaits_ack;
CREATE INDEX grants_change_xid ON grants (change_xid);

-- Audit entries as transactions write them: no lock, tagged with the writing transaction.
CREATE TABLE audit_entries (
    id         bigserial PRIMARY KEY,
    xid        xid8   NOT NULL DEFAULT pg_current_xact_id(),
    request_id uuid   NOT NULL,
    entry      jsonb  NOT NULL
);
CREATE INDEX audit_entries_order ON audit_entries (xid, id);

-- The audit chain: entries sealed in (xid, id) order once every transaction that could still
-- add an earlier entry has finished. Append-only, like audit_entries.
CREATE TABLE audit (
    seq        bigint PRIMARY KEY,
    entry_id   bigint NOT NULL UNIQUE REFERENCES audit_entries (id),
    request_id uuid   NOT NULL,
    prev_hash  text   NOT NULL,
    hash       text   NOT NULL,
    entry      jsonb  NOT NULL
);
CREATE INDEX audit_by_request ON audit (request_id, seq);

CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the jitgate audit tables are append-only';
END;
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();

-- The head of the chain and how far sealing got; locked only by sealers.
CREATE TABLE audit_head (
    id         int    PRIMARY KEY CHECK (id = 1),
    seq        bigint NOT NULL,
    hash       text   NOT NULL,
    sealed_xid xid8   NOT NULL,
    sealed_id  bigint NOT NULL
);
INSERT INTO audit_head VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', '0', 0);

-- Notifications waiting for delivery.
CREATE TABLE outbox (
    seq           bigserial PRIMARY KEY,
    event_id      text        NOT NULL UNIQUE,
    body          jsonb       NOT NULL,
    claimed_until timestamptz,
    done_at       timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE done_at IS NULL;
