-- Channels switched off (or back on) by an operator (PATCH /admin/v1/channels/{name}, imagegw
-- channels disable NAME): every replica reads this small table every routing.switch_poll and
-- sends a disabled channel no traffic. A channel without a row is enabled.
CREATE TABLE channel_switches (
    channel    TEXT PRIMARY KEY,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    updated_at INTEGER NOT NULL -- microseconds since the Unix epoch
);
