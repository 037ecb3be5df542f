-- The MQTT sessions of a cluster's ingest instances (issue 8, scale-out). Clusters run on
-- PostgreSQL; the table exists here too so that both back ends keep one schema.
CREATE TABLE ingest_sessions (
    client_id TEXT PRIMARY KEY,
    share_group TEXT NOT NULL,
    registered_ms BIGINT NOT NULL,
    release_requested_ms BIGINT
);
