-- Foundation schema (PostgreSQL). Telemetry samples are range-partitioned by month
-- (Asia/Shanghai month boundaries); partitions are created on demand by the storage layer.

CREATE TABLE units (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    monthly_energy_budget_kwh DOUBLE PRECISION NOT NULL CHECK (monthly_energy_budget_kwh >= 0),
    auto_approve BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE vehicles (
    vin TEXT PRIMARY KEY,
    plate TEXT NOT NULL,
    model TEXT NOT NULL,
    seats INTEGER NOT NULL CHECK (seats > 0),
    battery_kwh DOUBLE PRECISION NOT NULL CHECK (battery_kwh > 0),
    consumption_kwh_per_100km DOUBLE PRECISION NOT NULL CHECK (consumption_kwh_per_100km > 0),
    unit_id TEXT REFERENCES units (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT vehicles_plate_key UNIQUE (plate)
);
CREATE INDEX vehicles_unit_idx ON vehicles (unit_id);

CREATE TABLE drivers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    vehicle_vin TEXT REFERENCES vehicles (vin),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'dispatcher', 'driver', 'unit', 'auditor')),
    unit_id TEXT REFERENCES units (id),
    driver_id TEXT REFERENCES drivers (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE auth_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id);

-- The big time series. The primary key holds the partition key, so (vin, ts) is unique
-- across all partitions: a repeated sample is stored once.
CREATE TABLE telemetry_samples (
    vin TEXT NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    position_valid BOOLEAN NOT NULL,
    speed_kmh DOUBLE PRECISION,
    heading_deg DOUBLE PRECISION,
    soc_pct DOUBLE PRECISION,
    odometer_km DOUBLE PRECISION,
    charging BOOLEAN,
    ignition BOOLEAN,
    battery_voltage_v DOUBLE PRECISION,
    battery_current_a DOUBLE PRECISION,
    battery_temp_c DOUBLE PRECISION,
    range_km DOUBLE PRECISION,
    source TEXT NOT NULL,
    frame BYTEA, -- the GB/T 32960 frame the sample was decoded from, whole
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (vin, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE vehicle_state (
    vin TEXT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    pos_ts_ms BIGINT,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    speed_kmh DOUBLE PRECISION,
    heading_deg DOUBLE PRECISION,
    soc_pct DOUBLE PRECISION,
    odometer_km DOUBLE PRECISION,
    charging BOOLEAN,
    ignition BOOLEAN,
    range_km DOUBLE PRECISION
);

CREATE TABLE dead_letters (
    id BIGSERIAL PRIMARY KEY,
    received_ms BIGINT NOT NULL,
    topic TEXT NOT NULL,
    vin TEXT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload BYTEA NOT NULL,
    size BIGINT NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_ms);

CREATE TABLE charging_stations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    power_kw DOUBLE PRECISION NOT NULL
);
