-- Trips and charging sessions derived from telemetry (issue 7): what monthly statistics
-- read instead of raw samples. Re-derived by window when late data arrives. `month` is the
-- start's month in Asia/Shanghai (YYYY-MM), so both back ends group by it alike.

CREATE TABLE trips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vin TEXT NOT NULL REFERENCES vehicles (vin),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    month TEXT NOT NULL,
    start_lat REAL NOT NULL,
    start_lon REAL NOT NULL,
    end_lat REAL NOT NULL,
    end_lon REAL NOT NULL,
    start_odometer_km REAL,
    end_odometer_km REAL,
    distance_km REAL NOT NULL,
    energy_kwh REAL NOT NULL,
    start_soc_pct REAL,
    end_soc_pct REAL,
    open BOOLEAN NOT NULL,
    -- The order the trip served, if any, and whose it was.
    order_id TEXT,
    unit_id TEXT,
    driver_id TEXT
);
CREATE INDEX trips_vin_start_idx ON trips (vin, start_ms);
CREATE INDEX trips_month_idx ON trips (month, unit_id);

CREATE TABLE charging_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vin TEXT NOT NULL REFERENCES vehicles (vin),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    month TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    start_soc_pct REAL,
    end_soc_pct REAL,
    energy_kwh REAL NOT NULL,
    open BOOLEAN NOT NULL
);
CREATE INDEX charging_sessions_vin_start_idx ON charging_sessions (vin, start_ms);
CREATE INDEX charging_sessions_month_idx ON charging_sessions (month);
