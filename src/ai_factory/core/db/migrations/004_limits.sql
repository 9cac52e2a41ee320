-- 004: subscription-limit state and cost budgets.
-- * usage_limits: the latest report per rate-limit window (five_hour, seven_day, ...).
--   A 'rejected' row whose resets_at is in the future pauses spawning for every worker,
--   and survives an orchestrator restart.
-- * file_locks no longer references workers: the lock service is a separate concern
--   with the same contract on PostgreSQL and Redis (the holder id is the token).

CREATE TABLE usage_limits (
  window_type  TEXT PRIMARY KEY,
  status       TEXT NOT NULL,
  resets_at    TIMESTAMPTZ,
  utilization  DOUBLE PRECISION,
  message      TEXT,
  work_item_id UUID,
  worker_id    UUID,
  updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),

  CONSTRAINT valid_limit_status CHECK (status IN ('allowed', 'allowed_warning', 'rejected'))
);

ALTER TABLE file_locks DROP CONSTRAINT IF EXISTS file_locks_worker_id_fkey;
