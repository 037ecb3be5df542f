-- Ride orders, their append-only history, and idempotent retries (contract §3, §6).
-- Times are epoch milliseconds. A car's reservation is the order's window
-- [window_start_ms, window_end_ms); no two orders that occupy a car (assigned, accepted,
-- picked up) may overlap on it: the exclusion constraint makes that a database guarantee,
-- whichever instance writes.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    unit_id TEXT NOT NULL REFERENCES units (id),
    status TEXT NOT NULL,
    passengers INTEGER NOT NULL,
    pickup_lat DOUBLE PRECISION NOT NULL,
    pickup_lon DOUBLE PRECISION NOT NULL,
    pickup_name TEXT NOT NULL,
    dropoff_lat DOUBLE PRECISION NOT NULL,
    dropoff_lon DOUBLE PRECISION NOT NULL,
    dropoff_name TEXT NOT NULL,
    pickup_at_ms BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    vin TEXT REFERENCES vehicles (vin),
    driver_id TEXT REFERENCES drivers (id),
    unmatched_reason TEXT,
    window_start_ms BIGINT NOT NULL,
    window_end_ms BIGINT NOT NULL,
    assigned_ms BIGINT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT orders_window CHECK (window_start_ms < window_end_ms),
    CONSTRAINT orders_no_double_booking EXCLUDE USING gist (
        vin WITH =, int8range(window_start_ms, window_end_ms) WITH &&
    ) WHERE (status IN ('assigned', 'accepted', 'picked_up'))
);
CREATE INDEX orders_status_idx ON orders (status, window_start_ms);
CREATE INDEX orders_unit_idx ON orders (unit_id, pickup_at_ms);
CREATE INDEX orders_driver_idx ON orders (driver_id, pickup_at_ms);
CREATE INDEX orders_pickup_idx ON orders (pickup_at_ms);

-- Cars that declined an order or let it time out: never offered that order again.
CREATE TABLE order_exclusions (
    order_id TEXT NOT NULL REFERENCES orders (id),
    vin TEXT NOT NULL,
    PRIMARY KEY (order_id, vin)
);

CREATE TABLE order_events (
    id BIGSERIAL PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (id),
    ts_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_user_id BIGINT,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT,
    vin TEXT,
    on_behalf BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX order_events_order_idx ON order_events (order_id, id);

-- The audit trail cannot be edited: no update, delete or truncate.
CREATE FUNCTION order_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_events is append-only';
END
$$;
CREATE TRIGGER order_events_no_change BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION order_events_append_only();
CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION order_events_append_only();

-- A POST's answer kept for its Idempotency-Key (24 h).
CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    request TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_ms);
