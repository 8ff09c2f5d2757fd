-- Cost and price are separate amounts. cost keeps its name and meaning: what the key was charged
-- (its price; budgets and key_spend add it up). upstream_cost is what the provider charges the
-- operator for the request, in the deployment currency (the event's currency); upstream_list_cost
-- the same in the provider's own currency, upstream_currency. Both are 0 when the model is
-- unpriced or the upstream account's free quota paid. Rows written before this migration have 0.
ALTER TABLE usage_events ADD COLUMN upstream_cost BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN upstream_list_cost BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN upstream_currency TEXT NOT NULL DEFAULT '';
