-- Trips and charging sessions derived from telemetry (issue 7): what monthly statistics
-- read instead of raw samples. Re-derived by window when late data arrives. `month` is the
-- start's month in Asia/Shanghai (YYYY-MM), so both back ends group by it alike.

CREATE TABLE trips (
    id BIGSERIAL PRIMARY KEY,
    vin TEXT NOT NULL REFERENCES vehicles (vin),
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    month TEXT NOT NULL,
    start_lat DOUBLE PRECISION NOT NULL,
    start_lon DOUBLE PRECISION NOT NULL,
    end_lat DOUBLE PRECISION NOT NULL,
    end_lon DOUBLE PRECISION NOT NULL,
    start_odometer_km DOUBLE PRECISION,
    end_odometer_km DOUBLE PRECISION,
    distance_km DOUBLE PRECISION NOT NULL,
    energy_kwh DOUBLE PRECISION NOT NULL,
    start_soc_pct DOUBLE PRECISION,
    end_soc_pct DOUBLE PRECISION,
    open BOOLEAN NOT NULL,
    -- The order the trip served, if any, and whose it was.
    order_id TEXT,
    unit_id TEXT,
    driver_id TEXT
);
CREATE INDEX trips_vin_start_idx ON trips (vin, start_ms);
CREATE INDEX trips_month_idx ON trips (month, unit_id);

CREATE TABLE charging_sessions (
    id BIGSERIAL PRIMARY KEY,
    vin TEXT NOT NULL REFERENCES vehicles (vin),
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    month TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    start_soc_pct DOUBLE PRECISION,
    end_soc_pct DOUBLE PRECISION,
    energy_kwh DOUBLE PRECISION NOT NULL,
    open BOOLEAN NOT NULL
);
CREATE INDEX charging_sessions_vin_start_idx ON charging_sessions (vin, start_ms);
CREATE INDEX charging_sessions_month_idx ON charging_sessions (month);
