-- A vehicle's JT/T 808 (Beidou) terminal: the phone number its messages carry (digits without
-- the BCD padding's leading zeros) and the authentication code the gateway gave it when it
-- registered (kept so that every gateway instance, and a restarted one, accepts it).

ALTER TABLE vehicles ADD COLUMN terminal_phone TEXT;
ALTER TABLE vehicles ADD COLUMN terminal_auth_code TEXT;
CREATE UNIQUE INDEX vehicles_terminal_phone_key ON vehicles (terminal_phone);
