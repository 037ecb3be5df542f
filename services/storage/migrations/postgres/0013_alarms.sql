-- Geofences (parking places, service areas, zones; GeoJSON kept as text) and alarms. An
-- alarm's `key` makes it once-only: raising the same alarm again (late data evaluated again)
-- finds the row already there.

CREATE TABLE geofences (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('parking', 'service_area', 'zone')),
    unit_id TEXT REFERENCES units (id),
    vin TEXT REFERENCES vehicles (vin),
    geometry TEXT NOT NULL,
    radius_m DOUBLE PRECISION
);

CREATE TABLE alarms (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    vin TEXT,
    unit_id TEXT,
    ts_ms BIGINT NOT NULL,
    key TEXT NOT NULL,
    detail TEXT NOT NULL,
    acknowledged_ms BIGINT,
    acknowledged_by BIGINT,
    created_ms BIGINT NOT NULL DEFAULT (FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000))::BIGINT,
    CONSTRAINT alarms_key_key UNIQUE (key)
);
CREATE INDEX alarms_ts_idx ON alarms (ts_ms);
CREATE INDEX alarms_vin_ts_idx ON alarms (vin, ts_ms);
CREATE INDEX alarms_created_idx ON alarms (created_ms);

-- Webhooks: every new alarm of the hook's kinds is POSTed to its URL. The outbox
-- (webhook_deliveries) lives here, so a restart loses no delivery; a delivery is retried with
-- backoff until a 2xx, and once delivered is never sent again.
CREATE TABLE webhooks (
    id BIGSERIAL PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_ms BIGINT NOT NULL DEFAULT (FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000))::BIGINT
);

CREATE TABLE webhook_kinds (
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    PRIMARY KEY (webhook_id, kind)
);
CREATE INDEX webhook_kinds_kind_idx ON webhook_kinds (kind);

CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    alarm_id BIGINT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms BIGINT NOT NULL,
    delivered_ms BIGINT,
    gave_up_ms BIGINT,
    last_error TEXT,
    created_ms BIGINT NOT NULL,
    CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, alarm_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_ms) WHERE delivered_ms IS NULL AND gave_up_ms IS NULL;
