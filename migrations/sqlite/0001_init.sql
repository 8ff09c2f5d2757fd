-- imagegw schema, SQLite. Amounts are INTEGER micro-units (internal/money); times are INTEGER
-- microseconds since the Unix epoch, UTC (the zero time.Time is -62135596800000000), so they sort
-- and compare as numbers and keep the same precision as Postgres. Models is a JSON array of text.

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL DEFAULT '',
    prefix        TEXT NOT NULL DEFAULT '',
    hash          TEXT NOT NULL UNIQUE,
    models        TEXT NOT NULL DEFAULT '[]',
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    budget        INTEGER,
    budget_period TEXT NOT NULL DEFAULT '',
    rpm           INTEGER,
    ipm           INTEGER,
    mppm          INTEGER,
    concurrency   INTEGER,
    map_nearest   INTEGER
) STRICT;

CREATE TABLE budget_spend (
    key_id       TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    period_start INTEGER NOT NULL,
    spent        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period_start)
) STRICT, WITHOUT ROWID;

CREATE TABLE budget_holds (
    id           TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    period_start INTEGER NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount >= 0),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX budget_holds_key_period ON budget_holds (key_id, period_start);
CREATE INDEX budget_holds_expires ON budget_holds (expires_at);

CREATE TABLE free_images (
    key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    model  TEXT NOT NULL,
    used   INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (key_id, model)
) STRICT, WITHOUT ROWID;

CREATE TABLE usage_events (
    request_id  TEXT PRIMARY KEY,
    time        INTEGER NOT NULL,
    key_id      TEXT NOT NULL,
    model       TEXT NOT NULL,
    provider    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    operation   TEXT NOT NULL,
    n_requested INTEGER NOT NULL,
    n_delivered INTEGER NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    steps       INTEGER NOT NULL,
    cost        INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    status      TEXT NOT NULL,
    error_kind  TEXT NOT NULL,
    latency_ms  INTEGER NOT NULL,
    upstream_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX usage_events_time ON usage_events (time);
CREATE INDEX usage_events_key_time ON usage_events (key_id, time);
CREATE INDEX usage_events_model_time ON usage_events (model, time);
