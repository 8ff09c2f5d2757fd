-- Budgets in escrow (issue 9). The ledger (usage_events) is the truth; key_spend is its running
-- sum per key and budget period, updated in the same transaction as the ledger rows, so a
-- budget position always equals the ledger. Gateways no longer write a hold per request: each
-- replica claims a slice of a key's remaining budget (budget_slices) and spends it in memory.

-- What a key spent, per period kind: 'total' (period_start 0001-01-01), 'daily' (UTC midnight)
-- and 'monthly' (the 1st, 00:00 UTC). All three are kept for every key, budget or not, so spend
-- made while a key had no budget counts when one is set in the same period.
CREATE TABLE key_spend (
    key_id       TEXT NOT NULL,
    period       TEXT NOT NULL CHECK (period IN ('total', 'daily', 'monthly')),
    period_start TIMESTAMPTZ NOT NULL,
    spent        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period, period_start)
);

-- A replica's share of a key's budget for one period. amount is what the slice still reserves:
-- granted, minus what the replica gave back, minus the charges of its events already in the
-- ledger. A slice not renewed by expires_at no longer counts (its replica died or lost the
-- store); it is deleted by the sweeper.
CREATE TABLE budget_slices (
    id           TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL,
    period       TEXT NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount >= 0),
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX budget_slices_key ON budget_slices (key_id, period, period_start);

-- Rebuild every position from the ledger.
INSERT INTO key_spend (key_id, period, period_start, spent)
SELECT key_id, 'total', TIMESTAMPTZ '0001-01-01 00:00:00+00', SUM(cost) FROM usage_events
    WHERE key_id <> '' AND cost > 0 GROUP BY key_id
UNION ALL
SELECT key_id, 'daily', date_trunc('day', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', SUM(cost) FROM usage_events
    WHERE key_id <> '' AND cost > 0 GROUP BY 1, 3
UNION ALL
SELECT key_id, 'monthly', date_trunc('month', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', SUM(cost) FROM usage_events
    WHERE key_id <> '' AND cost > 0 GROUP BY 1, 3;

DROP TABLE budget_holds;
DROP TABLE budget_spend;
