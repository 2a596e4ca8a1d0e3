-- Outbox retention: a published row is kept for OUTBOX_RETENTION_HOURS with where it landed, so
-- the relay can publish the window again when a broker that keeps nothing (the embedded Tansu)
-- restarts and loses its log; consumers drop the copies through their inbox. Pruned by the relay.
ALTER TABLE outbox
    ADD COLUMN published_at        timestamptz,
    ADD COLUMN published_partition integer,
    ADD COLUMN published_offset    bigint;

CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
