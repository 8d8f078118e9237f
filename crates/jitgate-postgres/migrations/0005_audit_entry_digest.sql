-- Each audit entry's content is fixed when it is committed: the SHA-256 of its RFC 8785
-- canonical JSON, written in the same statement. The sealer checks it before chaining the
-- entry, so an entry edited between its commit and its sealing is refused, not sealed as
-- genuine. Entries written before this migration have no digest.
ALTER TABLE audit_entries ADD COLUMN digest text;
