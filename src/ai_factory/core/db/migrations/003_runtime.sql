-- 003: what the orchestrator needs to supervise the workers it spawns.
-- * pid / pid_start / spawn_host: the process a process or bwrap spawner started, with
--   its start time (clock ticks since boot, from /proc) so a reused pid is never
--   mistaken for our worker, and the host it runs on (a pid means nothing elsewhere).
-- * exit_code: how the process or container ended, when the orchestrator saw it end.
ALTER TABLE workers
  ADD COLUMN pid        INT,
  ADD COLUMN pid_start  BIGINT,
  ADD COLUMN spawn_host TEXT NOT NULL DEFAULT '',
  ADD COLUMN exit_code  INT;

-- The scheduler counts these on every pass; the health check scans them.
CREATE INDEX workers_active ON workers (last_heartbeat)
  WHERE status IN ('idle', 'busy', 'stuck') AND finished_at IS NULL;
