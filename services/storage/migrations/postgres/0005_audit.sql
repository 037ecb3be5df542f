-- Every write request through the API (issue 8: an audit log of every write, readable by the
-- auditor): who, when, what, and the answer's status. Append-only, like the order history.

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    user_id BIGINT,
    username TEXT,
    role TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL
);
CREATE INDEX audit_log_ts_idx ON audit_log (ts_ms);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
