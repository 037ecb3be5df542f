-- A sample stamped more than a few minutes ahead of the receiving clock (a terminal whose
-- clock is wrong) is stored with this flag set and never moves the vehicle's state; the
-- start-up catch-up of states skips it too (issue 17). A constant default: no table rewrite,
-- and the partitions take the column from their parent.
ALTER TABLE telemetry_samples ADD COLUMN clock_ahead BOOLEAN NOT NULL DEFAULT FALSE;
