-- Work-item queries. Every transition names its source status (and the lease token
-- where a worker is involved) in its WHERE clause; the caller checks the row count.
-- The status trigger writes the audit event from status_reason.

-- name: insert
INSERT INTO work_items (source, source_id, source_url, repo, base_branch, spec, priority,
                        max_attempts, status_reason)
VALUES (%(source)s, %(source_id)s, %(source_url)s, %(repo)s, %(base_branch)s, %(spec)s,
        %(priority)s, %(max_attempts)s, 'submitted')
ON CONFLICT (source, repo, source_id) WHERE status IN ('queued', 'assigned', 'running', 'stuck')
DO NOTHING
RETURNING *;

-- name: get_active_by_source
SELECT * FROM work_items
 WHERE source = %(source)s AND repo = %(repo)s AND source_id = %(source_id)s
   AND status IN ('queued', 'assigned', 'running', 'stuck');

-- name: get
SELECT * FROM work_items WHERE id = %(id)s;

-- name: list
SELECT * FROM work_items
 WHERE (%(statuses)s::text[] IS NULL OR status = ANY (%(statuses)s::text[]))
   AND (%(repo)s::text IS NULL OR repo = %(repo)s)
   AND (%(source)s::text IS NULL OR source = %(source)s)
   AND (%(source_id)s::text IS NULL OR source_id = %(source_id)s)
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s OFFSET %(offset)s;

-- name: claim_next
UPDATE work_items
   SET status = 'assigned', lease_token = gen_random_uuid(), attempts = attempts + 1,
       worker_id = %(worker_id)s, status_reason = %(reason)s, error = NULL, updated_at = now()
 WHERE id = (SELECT id FROM work_items
              WHERE status = 'queued' AND available_at <= now()
              ORDER BY priority_rank, created_at, id
              LIMIT 1
              FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: has_claimable
SELECT EXISTS (SELECT 1 FROM work_items
                WHERE status = 'queued' AND available_at <= now()) AS found;

-- name: claim
UPDATE work_items
   SET status = 'assigned', lease_token = gen_random_uuid(), attempts = attempts + 1,
       worker_id = %(worker_id)s, status_reason = %(reason)s, error = NULL, updated_at = now()
 WHERE id = %(id)s AND status = 'queued'
RETURNING *;

-- name: start
UPDATE work_items
   SET status = 'running', started_at = now(), status_reason = %(reason)s, updated_at = now()
 WHERE id = %(id)s AND status = 'assigned' AND lease_token = %(lease_token)s
RETURNING *;

-- name: complete
UPDATE work_items
   SET status = 'completed', pr_url = %(pr_url)s, iterations = %(iterations)s,
       tokens = %(tokens)s, cost_usd = %(cost_usd)s, completed_at = now(),
       status_reason = %(reason)s, updated_at = now()
 WHERE id = %(id)s AND status = 'running' AND lease_token = %(lease_token)s
RETURNING *;

-- name: fail
UPDATE work_items
   SET status = 'failed', error = %(error)s, completed_at = now(),
       iterations = greatest(iterations, %(iterations)s), tokens = greatest(tokens, %(tokens)s),
       cost_usd = greatest(cost_usd, %(cost_usd)s),
       status_reason = %(reason)s, updated_at = now()
 WHERE id = %(id)s AND status IN ('assigned', 'running') AND lease_token = %(lease_token)s
RETURNING *;

-- name: mark_stuck
UPDATE work_items
   SET status = 'stuck', error = %(error)s, status_reason = %(reason)s, updated_at = now(),
       iterations = greatest(iterations, %(iterations)s), tokens = greatest(tokens, %(tokens)s),
       cost_usd = greatest(cost_usd, %(cost_usd)s)
 WHERE id = %(id)s AND status = 'running' AND lease_token = %(lease_token)s
RETURNING *;

-- name: requeue
-- Hand an item back (worker died, orchestrator shut down). With refund the attempt is
-- not counted; past max_attempts the item fails instead.
UPDATE work_items
   SET status = CASE WHEN %(refund)s OR attempts < max_attempts THEN 'queued' ELSE 'failed' END,
       attempts = CASE WHEN %(refund)s THEN greatest(attempts - 1, 0) ELSE attempts END,
       error = CASE WHEN %(refund)s OR attempts < max_attempts THEN error ELSE %(reason)s END,
       completed_at = CASE WHEN %(refund)s OR attempts < max_attempts THEN NULL ELSE now() END,
       available_at = now() + make_interval(secs => %(delay_s)s),
       worker_id = NULL, lease_token = NULL, status_reason = %(reason)s, updated_at = now()
 WHERE id = %(id)s AND status IN ('assigned', 'running') AND lease_token = %(lease_token)s
RETURNING *;

-- name: cancel
UPDATE work_items
   SET status = 'cancelled', completed_at = now(), status_reason = %(reason)s,
       lease_token = NULL, updated_at = now()
 WHERE id = %(id)s AND status IN ('queued', 'assigned', 'running', 'stuck')
RETURNING *;

-- name: retry
UPDATE work_items
   SET status = 'queued', attempts = 0, error = NULL, pr_url = NULL, worker_id = NULL,
       lease_token = NULL, started_at = NULL, completed_at = NULL, available_at = now(),
       status_reason = %(reason)s, updated_at = now()
 WHERE id = %(id)s AND status IN ('failed', 'stuck', 'cancelled')
RETURNING *;

-- name: set_priority
UPDATE work_items SET priority = %(priority)s, updated_at = now()
 WHERE id = %(id)s AND status = 'queued'
RETURNING *;

-- name: stats
SELECT status, count(*)::int AS n FROM work_items GROUP BY status;

-- name: events
SELECT * FROM work_item_events
 WHERE work_item_id = %(id)s AND id > %(after)s
 ORDER BY id
 LIMIT %(limit)s;

-- name: add_event
INSERT INTO work_item_events (work_item_id, kind, reason, data)
VALUES (%(id)s, %(kind)s, %(reason)s, %(data)s)
RETURNING *;
