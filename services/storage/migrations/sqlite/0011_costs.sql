-- Costs: what each charging session cost at the tariff, costs entered by hand or imported
-- (tolls, parking, repairs, insurance, others), and settings kept as JSON by key (the tariff).

ALTER TABLE charging_sessions ADD COLUMN cost_yuan REAL NOT NULL DEFAULT 0;

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE costs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vin TEXT NOT NULL REFERENCES vehicles (vin),
    spent_on TEXT NOT NULL,
    month TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('toll', 'parking', 'repair', 'insurance', 'other')),
    amount_yuan REAL NOT NULL CHECK (amount_yuan >= 0),
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX costs_month_idx ON costs (month, vin);
