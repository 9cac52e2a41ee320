-- 006: what the scheduler reads on every pass stays cheap as history grows.
-- * the rate limiter's cooldown reads max(workers.created_at): an index answers it
--   from one entry instead of scanning every worker ever started.
-- * the "anything to claim?" check reads the claim index (work_items_claim, 001).

CREATE INDEX workers_created ON workers (created_at);
