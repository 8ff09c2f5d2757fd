-- The ledger's request_id is the gateway's own id, unique per request. A client's X-Request-Id
-- (or X-Client-Request-Id) is only a label: kept here for correlation, never a key, so clients
-- can neither merge their events nor drop another key's.
ALTER TABLE usage_events ADD COLUMN client_request_id TEXT NOT NULL DEFAULT '';
