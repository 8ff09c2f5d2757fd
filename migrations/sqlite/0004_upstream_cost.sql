-- Cost and price, separately; see migrations/postgres/0004_upstream_cost.sql. The amounts are
-- INTEGER micro-units (a STRICT table takes no BIGINT; SQLite's INTEGER is 64-bit).
ALTER TABLE usage_events ADD COLUMN upstream_cost INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN upstream_list_cost INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN upstream_currency TEXT NOT NULL DEFAULT '';
