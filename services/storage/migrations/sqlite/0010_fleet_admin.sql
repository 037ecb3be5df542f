-- Fleet administration, first part: editing and retiring registry records, the vehicle file
-- (insurance, inspection and maintenance dates and intervals) and its service records.
-- Retired records stay (history and statistics keep naming them); `retired_ms` says since when.
-- Dates are kept as 'YYYY-MM-DD' text (Asia/Shanghai calendar days), which sort as dates.

ALTER TABLE units ADD COLUMN contact_email TEXT;

ALTER TABLE vehicles ADD COLUMN retired_ms INTEGER;
ALTER TABLE vehicles ADD COLUMN insurance_until TEXT;
ALTER TABLE vehicles ADD COLUMN inspection_due TEXT;
ALTER TABLE vehicles ADD COLUMN maintenance_every_km REAL;
ALTER TABLE vehicles ADD COLUMN maintenance_every_months INTEGER;
ALTER TABLE vehicles ADD COLUMN last_maintenance_on TEXT;
ALTER TABLE vehicles ADD COLUMN last_maintenance_km REAL;
ALTER TABLE vehicles ADD COLUMN in_maintenance BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE drivers ADD COLUMN retired_ms INTEGER;
ALTER TABLE users ADD COLUMN retired_ms INTEGER;

CREATE TABLE maintenance_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vin TEXT NOT NULL REFERENCES vehicles (vin),
    done_on TEXT NOT NULL,
    odometer_km REAL,
    note TEXT NOT NULL DEFAULT '',
    cost_yuan REAL NOT NULL DEFAULT 0 CHECK (cost_yuan >= 0),
    created_ms INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX maintenance_records_vin_idx ON maintenance_records (vin, done_on);
