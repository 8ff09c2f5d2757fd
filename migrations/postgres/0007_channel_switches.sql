-- Channels switched off (or back on) by an operator (PATCH /admin/v1/channels/{name}, imagegw
-- channels disable NAME): every replica reads this small table every routing.switch_poll and
-- sends a disabled channel no traffic. A channel without a row is enabled.
CREATE TABLE channel_switches (
    channel    TEXT PRIMARY KEY,
    enabled    BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
