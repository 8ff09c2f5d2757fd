-- Budgets in escrow (issue 9); see migrations/postgres/0002_escrow.sql. Times are microseconds
-- since the Unix epoch; the 'total' period starts at the zero time.Time (-62135596800000000).

CREATE TABLE key_spend (
    key_id       TEXT NOT NULL,
    period       TEXT NOT NULL CHECK (period IN ('total', 'daily', 'monthly')),
    period_start INTEGER NOT NULL,
    spent        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period, period_start)
) STRICT, WITHOUT ROWID;

CREATE TABLE budget_slices (
    id           TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL,
    period       TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount >= 0),
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX budget_slices_key ON budget_slices (key_id, period, period_start);

INSERT INTO key_spend (key_id, period, period_start, spent)
SELECT key_id, 'total', -62135596800000000, SUM(cost) FROM usage_events
    WHERE key_id <> '' AND cost > 0 GROUP BY key_id
UNION ALL
SELECT key_id, 'daily', (time - (time % 86400000000)), SUM(cost) FROM usage_events
    WHERE key_id <> '' AND cost > 0 GROUP BY 1, 3
UNION ALL
SELECT key_id, 'monthly', CAST(strftime('%s', datetime(time / 1000000, 'unixepoch', 'start of month')) AS INTEGER) * 1000000,
    SUM(cost) FROM usage_events WHERE key_id <> '' AND cost > 0 GROUP BY 1, 3;

DROP TABLE budget_holds;
DROP TABLE budget_spend;
