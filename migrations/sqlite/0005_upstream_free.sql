-- Upstream accounts' free quotas (seed 004): one pool per channel and upstream model, shared by
-- every key and every replica. They lower the operator's cost, not the keys' price.
CREATE TABLE upstream_free (
    channel TEXT NOT NULL,
    model   TEXT NOT NULL,
    used    INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (channel, model)
);
