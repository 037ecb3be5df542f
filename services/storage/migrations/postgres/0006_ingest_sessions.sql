-- The MQTT sessions of a cluster's ingest instances (issue 8, scale-out). The broker keeps
-- handing a share group's messages to a member whose persistent session is offline, so
-- while an instance is down another one drains its session; this table says which sessions
-- exist, and lets an owner that comes back ask for its session to be handed back.
CREATE TABLE ingest_sessions (
    client_id TEXT PRIMARY KEY,
    share_group TEXT NOT NULL,
    registered_ms BIGINT NOT NULL,
    -- When the owner, back and waiting, last asked for its session (null: nobody asks).
    release_requested_ms BIGINT
);
