-- MQTT accounts of vehicles (issue 8): one Mosquitto password-file line per vehicle that was
-- issued a secret (`POST /api/v1/vehicles/{vin}/mqtt-secret`), `VIN:$7$…` (PBKDF2-SHA512).
-- The secret itself is never stored; issuing a new one replaces the line.

CREATE TABLE vehicle_mqtt_secrets (
    vin TEXT PRIMARY KEY REFERENCES vehicles (vin),
    password_line TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
