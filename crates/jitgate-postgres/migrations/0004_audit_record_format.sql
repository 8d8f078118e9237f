-- Audit record formats (jitgate_core::audit::AuditRecord::v): records sealed before this
-- migration are format 1; the sealer writes the format it chained with (2: the hash covers the
-- RFC 8785 canonical JSON of the record).
ALTER TABLE audit ADD COLUMN v smallint NOT NULL DEFAULT 1;
