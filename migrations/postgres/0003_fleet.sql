-- The replica that made each audited change (a fleet shares one audit log).
ALTER TABLE audit_log ADD COLUMN replica TEXT;
