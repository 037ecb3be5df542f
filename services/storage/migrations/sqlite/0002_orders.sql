-- Ride orders, their append-only history, and idempotent retries (contract §3, §6).
-- Times are epoch milliseconds. A car's reservation is the order's window
-- [window_start_ms, window_end_ms); no two orders that occupy a car (assigned, accepted,
-- picked up) may overlap on it: the triggers below refuse it inside the writing
-- transaction, and SQLite has one writer at a time.

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    unit_id TEXT NOT NULL REFERENCES units (id),
    status TEXT NOT NULL,
    passengers INTEGER NOT NULL,
    pickup_lat REAL NOT NULL,
    pickup_lon REAL NOT NULL,
    pickup_name TEXT NOT NULL,
    dropoff_lat REAL NOT NULL,
    dropoff_lon REAL NOT NULL,
    dropoff_name TEXT NOT NULL,
    pickup_at_ms INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    vin TEXT REFERENCES vehicles (vin),
    driver_id TEXT REFERENCES drivers (id),
    unmatched_reason TEXT,
    window_start_ms INTEGER NOT NULL,
    window_end_ms INTEGER NOT NULL,
    assigned_ms INTEGER,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT orders_window CHECK (window_start_ms < window_end_ms)
);
CREATE INDEX orders_status_idx ON orders (status, window_start_ms);
CREATE INDEX orders_unit_idx ON orders (unit_id, pickup_at_ms);
CREATE INDEX orders_driver_idx ON orders (driver_id, pickup_at_ms);
CREATE INDEX orders_pickup_idx ON orders (pickup_at_ms);
CREATE INDEX orders_vin_idx ON orders (vin, window_start_ms);

CREATE TRIGGER orders_no_double_booking_insert BEFORE INSERT ON orders
WHEN NEW.vin IS NOT NULL AND NEW.status IN ('assigned', 'accepted', 'picked_up')
BEGIN
    SELECT RAISE(ABORT, 'orders_no_double_booking') WHERE EXISTS (
        SELECT 1 FROM orders o
        WHERE o.vin = NEW.vin AND o.id <> NEW.id AND o.status IN ('assigned', 'accepted', 'picked_up')
          AND o.window_start_ms < NEW.window_end_ms AND NEW.window_start_ms < o.window_end_ms);
END;

CREATE TRIGGER orders_no_double_booking_update BEFORE UPDATE ON orders
WHEN NEW.vin IS NOT NULL AND NEW.status IN ('assigned', 'accepted', 'picked_up')
BEGIN
    SELECT RAISE(ABORT, 'orders_no_double_booking') WHERE EXISTS (
        SELECT 1 FROM orders o
        WHERE o.vin = NEW.vin AND o.id <> NEW.id AND o.status IN ('assigned', 'accepted', 'picked_up')
          AND o.window_start_ms < NEW.window_end_ms AND NEW.window_start_ms < o.window_end_ms);
END;

-- Cars that declined an order or let it time out: never offered that order again.
CREATE TABLE order_exclusions (
    order_id TEXT NOT NULL REFERENCES orders (id),
    vin TEXT NOT NULL,
    PRIMARY KEY (order_id, vin)
);

CREATE TABLE order_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL REFERENCES orders (id),
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    actor_user_id INTEGER,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT,
    vin TEXT,
    on_behalf BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX order_events_order_idx ON order_events (order_id, id);

-- The audit trail cannot be edited.
CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
BEGIN
    SELECT RAISE(ABORT, 'order_events is append-only');
END;
CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events
BEGIN
    SELECT RAISE(ABORT, 'order_events is append-only');
END;

-- A POST's answer kept for its Idempotency-Key (24 h).
CREATE TABLE idempotency_keys (
    user_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    request TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_ms);
