-- Foundation schema (SQLite). Times are INTEGER milliseconds since the Unix epoch (UTC):
-- compact, fast to index and ordered as numbers.

CREATE TABLE units (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    monthly_energy_budget_kwh REAL NOT NULL CHECK (monthly_energy_budget_kwh >= 0),
    auto_approve BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);

CREATE TABLE vehicles (
    vin TEXT PRIMARY KEY,
    plate TEXT NOT NULL,
    model TEXT NOT NULL,
    seats INTEGER NOT NULL CHECK (seats > 0),
    battery_kwh REAL NOT NULL CHECK (battery_kwh > 0),
    consumption_kwh_per_100km REAL NOT NULL CHECK (consumption_kwh_per_100km > 0),
    unit_id TEXT REFERENCES units (id),
    created_ms INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    CONSTRAINT vehicles_plate_key UNIQUE (plate)
);
CREATE INDEX vehicles_unit_idx ON vehicles (unit_id);

CREATE TABLE drivers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    vehicle_vin TEXT REFERENCES vehicles (vin),
    created_ms INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'dispatcher', 'driver', 'unit', 'auditor')),
    unit_id TEXT REFERENCES units (id),
    driver_id TEXT REFERENCES drivers (id),
    created_ms INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE auth_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id);

-- The big time series. One row per (vin, ts): a repeated sample is stored once. A rowid
-- table (rows appended in arrival order) with a separate (vin, ts) index: rows are large
-- (GB/T blocks), and keeping them in (vin, ts) order would split pages all over the table
-- on every batch from a thousand cars.
CREATE TABLE telemetry_samples (
    id INTEGER PRIMARY KEY,
    vin TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    position_valid BOOLEAN NOT NULL,
    speed_kmh REAL,
    heading_deg REAL,
    soc_pct REAL,
    odometer_km REAL,
    charging BOOLEAN,
    ignition BOOLEAN,
    battery_voltage_v REAL,
    battery_current_a REAL,
    battery_temp_c REAL,
    range_km REAL,
    source TEXT NOT NULL,
    frame BLOB, -- the GB/T 32960 frame the sample was decoded from, whole
    received_ms INTEGER NOT NULL,
    CONSTRAINT telemetry_samples_vin_ts_key UNIQUE (vin, ts_ms)
);

-- The newest state per vehicle; `ts_ms` is the newest sample, `pos_ts_ms` the newest valid
-- position. Neither ever moves backwards.
CREATE TABLE vehicle_state (
    vin TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    pos_ts_ms INTEGER,
    lat REAL,
    lon REAL,
    speed_kmh REAL,
    heading_deg REAL,
    soc_pct REAL,
    odometer_km REAL,
    charging BOOLEAN,
    ignition BOOLEAN,
    range_km REAL
);

CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    vin TEXT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_ms);

CREATE TABLE charging_stations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    power_kw REAL NOT NULL
);
