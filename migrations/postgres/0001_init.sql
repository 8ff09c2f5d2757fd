-- imagegw schema, Postgres. Amounts are BIGINT micro-units (internal/money); times are timestamptz.

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL DEFAULT '',
    prefix        TEXT NOT NULL DEFAULT '',
    hash          TEXT NOT NULL UNIQUE,
    models        TEXT[] NOT NULL DEFAULT '{}', -- public model names; empty means all
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    budget        BIGINT,                       -- NULL: unlimited
    budget_period TEXT NOT NULL DEFAULT '',
    rpm           INTEGER,
    ipm           INTEGER,
    mppm          INTEGER,
    concurrency   INTEGER,
    map_nearest   BOOLEAN
);

-- What a key has spent in one budget period (period_start 0001-01-01 for the total budget).
-- PlaceHold locks this row, which serialises holds on one key and period across processes.
CREATE TABLE budget_spend (
    key_id       TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    period_start TIMESTAMPTZ NOT NULL,
    spent        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period_start)
);

-- Open holds: budget reserved by in-flight requests.
CREATE TABLE budget_holds (
    id           TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    period_start TIMESTAMPTZ NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount >= 0),
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX budget_holds_key_period ON budget_holds (key_id, period_start);
CREATE INDEX budget_holds_expires ON budget_holds (expires_at);

-- Free images taken from a key's per-model quota.
CREATE TABLE free_images (
    key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    model  TEXT NOT NULL,
    used   INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (key_id, model)
);

-- The usage ledger: one row per request. No foreign key to api_keys: the ledger outlives keys.
CREATE TABLE usage_events (
    request_id  TEXT PRIMARY KEY,
    time        TIMESTAMPTZ NOT NULL,
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
    cost        BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    status      TEXT NOT NULL,
    error_kind  TEXT NOT NULL,
    latency_ms  BIGINT NOT NULL,
    upstream_ms BIGINT NOT NULL
);
CREATE INDEX usage_events_time ON usage_events (time);
CREATE INDEX usage_events_key_time ON usage_events (key_id, time);
CREATE INDEX usage_events_model_time ON usage_events (model, time);
