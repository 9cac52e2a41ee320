-- 007: the conditions every reader and writer of work_items and workers shares, written
-- once as SQL functions (inlined by the planner, so the partial indexes still match).
-- * worker_is_live: a worker may still act (count against MAX_WORKERS, hold an item);
--   a worker that reported stuck keeps status 'stuck' as history, with finished_at set.
-- * item_is_active: at most one such item per (source, repo, source_id).
-- * item_is_held: claimed by a worker (its lease fences every later transition).
-- * lease_is_current: the worker's lease is still the one its item holds.

CREATE FUNCTION worker_is_live(status TEXT, finished_at TIMESTAMPTZ) RETURNS BOOLEAN
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT status IN ('idle', 'busy', 'stuck') AND finished_at IS NULL $$;

CREATE FUNCTION item_is_active(status TEXT) RETURNS BOOLEAN
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT status IN ('queued', 'assigned', 'running', 'stuck') $$;

CREATE FUNCTION item_is_held(status TEXT) RETURNS BOOLEAN
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT status IN ('assigned', 'running') $$;

CREATE FUNCTION lease_is_current(item_status TEXT, item_lease UUID, worker_lease UUID)
  RETURNS BOOLEAN
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT item_is_held(item_status) AND item_lease = worker_lease $$;

-- The same indexes, now defined by the functions the queries use.
DROP INDEX work_items_active_source;
CREATE UNIQUE INDEX work_items_active_source ON work_items (source, repo, source_id)
  WHERE item_is_active(status);
DROP INDEX workers_active;
CREATE INDEX workers_active ON workers (last_heartbeat)
  WHERE worker_is_live(status, finished_at);
