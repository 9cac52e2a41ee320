-- Worker queries. A worker row carries the lease token of the item it works on, so
-- every item transition it causes is fenced by that lease. A worker is live while
-- status IN ('idle', 'busy', 'stuck') AND finished_at IS NULL (a worker that reported
-- stuck keeps status 'stuck' as history, with finished_at set).

-- name: insert
INSERT INTO workers (id, container_id, work_item_id, lease_token, token_hash, status,
                     spawner, host)
VALUES (%(id)s, %(container_id)s, %(work_item_id)s, %(lease_token)s, %(token_hash)s,
        %(status)s, %(spawner)s, %(host)s)
RETURNING *;

-- name: get
SELECT * FROM workers WHERE id = %(id)s;

-- name: list
SELECT * FROM workers
 WHERE %(all)s OR (status IN ('idle', 'busy', 'stuck') AND finished_at IS NULL)
 ORDER BY created_at DESC
 LIMIT %(limit)s;

-- name: mark_busy
UPDATE workers SET status = 'busy', phase = 'setup', last_heartbeat = now(),
                   host = coalesce(nullif(%(host)s, ''), host)
 WHERE id = %(id)s AND status IN ('idle', 'busy') AND finished_at IS NULL
RETURNING *;

-- name: heartbeat
-- Only while the worker still holds its item's lease (the condition of current_item, in
-- the same statement); no row otherwise. previous_phase is read from the row as it was.
UPDATE workers w
   SET last_heartbeat = now(), current_iteration = %(iteration)s,
       total_tokens = %(tokens)s, cost_usd = %(cost_usd)s, phase = %(phase)s,
       status = CASE WHEN %(phase)s = 'stuck' THEN 'stuck' ELSE 'busy' END
  FROM work_items i
 WHERE w.id = %(id)s AND w.status IN ('idle', 'busy', 'stuck') AND w.finished_at IS NULL
   AND i.id = w.work_item_id AND i.lease_token = w.lease_token
   AND i.status IN ('assigned', 'running')
RETURNING w.*, (SELECT phase FROM workers p WHERE p.id = w.id) AS previous_phase;

-- name: finish
UPDATE workers SET status = %(status)s, finished_at = now(), phase = NULL
 WHERE id = %(id)s AND status IN ('idle', 'busy', 'stuck') AND finished_at IS NULL
RETURNING *;

-- name: stats
SELECT status, count(*)::int AS n FROM workers
 WHERE status IN ('idle', 'busy', 'stuck') AND finished_at IS NULL GROUP BY status;

-- name: current_item
-- The item a live worker still holds the lease of; no row once the worker was finished,
-- or the item moved on (cancelled, requeued, claimed by another worker).
SELECT i.* FROM workers w JOIN work_items i ON i.id = w.work_item_id
 WHERE w.id = %(id)s AND w.status IN ('idle', 'busy', 'stuck') AND w.finished_at IS NULL
   AND i.lease_token = w.lease_token AND i.status IN ('assigned', 'running');

-- name: insert_metrics
INSERT INTO worker_metrics (worker_id, work_item_id, iterations, tokens_used, cost_usd,
                            duration_seconds, files_changed, status)
SELECT id, work_item_id, %(iterations)s, %(tokens)s, %(cost_usd)s,
       greatest(0, extract(epoch FROM now() - created_at))::int, %(files_changed)s, %(status)s
  FROM workers WHERE id = %(id)s;

-- name: record_iteration
INSERT INTO iterations (worker_id, work_item_id, number, input_tokens, output_tokens,
                        cache_tokens, cost_usd, duration_ms, outcome)
VALUES (%(worker_id)s, %(work_item_id)s, %(number)s, %(input_tokens)s, %(output_tokens)s,
        %(cache_tokens)s, %(cost_usd)s, %(duration_ms)s, %(outcome)s)
ON CONFLICT (worker_id, number) DO NOTHING
RETURNING id;
