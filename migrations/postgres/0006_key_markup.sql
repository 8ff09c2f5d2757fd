-- A key's own markup: what it pays is the provider's cost × this (in micro-units: 1500000 is
-- ×1.5), instead of the deployment's or the model's markup. NULL means none of its own. A price
-- set in config is never marked up.
ALTER TABLE api_keys ADD COLUMN markup BIGINT;
