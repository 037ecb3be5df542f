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
    CONSTRAINT alarms_key_key UNIQUE (key)
);
CREATE INDEX alarms_ts_idx ON alarms (ts_ms);
CREATE INDEX alarms_vin_ts_idx ON alarms (vin, ts_ms);
