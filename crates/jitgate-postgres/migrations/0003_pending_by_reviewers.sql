-- Pending requests by reviewer group: a reviewer's queue reads only the requests whose flows
-- name one of the reviewer's groups, however many unrelated requests wait.
--
-- The keys are each requirement's `reviewers` entity as normalized jsonb text, so the store
-- computes them the same way for the index and for the query (from a JSON array of entities),
-- and requests stored before this migration are indexed without rewriting their rows.
CREATE FUNCTION request_reviewer_keys(body jsonb) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ARRAY(SELECT (r -> 'reviewers')::text FROM jsonb_array_elements(body -> 'flow' -> 'requirements') r);

-- fastupdate off: with GIN's pending list, every query scans the entries inserted since the
-- last cleanup (up to 4 MB), which made a queue cost grow with unrelated requests again.
CREATE INDEX requests_pending_reviewers ON requests USING gin (request_reviewer_keys(body))
    WITH (fastupdate = off) WHERE state = 'pending';
