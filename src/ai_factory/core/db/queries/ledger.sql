-- Every change to work_items and workers (and the rows that go with them: iterations,
-- worker_metrics, work-item events). Only `orchestrator.ledger` runs these, one
-- transaction per transition. A transition names its source status, and the lease
-- token where a worker is involved, in its WHERE clause; the caller checks the row.
-- The status trigger (migration 001) writes the audit event from status_reason.

-- name: submit
-- A new queued item; no row when the same source item is already active.
INSERT INTO work_items (source, source_id, source_url, repo, base_branch, spec, priority,
                        max_attempts, kind, parent_id, branch, pr_number, context,
                        status_reason)
VALUES (%(source)s, %(source_id)s, %(source_url)s, %(repo)s, %(base_branch)s, %(spec)s,
        %(priority)s, %(max_attempts)s, %(kind)s, %(parent_id)s, %(branch)s, %(pr_number)s,
        %(context)s, 'submitted')
ON CONFLICT (source, repo, source_id) WHERE item_is_active(status)
DO NOTHING
RETURNING *;

-- name: claim_next
-- The most urgent, oldest queued item gets a new lease and its worker row (idle, with
-- the worker's token hash) in the same statement.
WITH claimed AS (
  UPDATE work_items
     SET status = 'assigned', lease_token = gen_random_uuid(), attempts = attempts + 1,
         worker_id = %(worker_id)s, status_reason = %(reason)s, error = NULL,
         updated_at = now()
   WHERE id = (SELECT id FROM work_items
                WHERE status = 'queued' AND available_at <= now()
                ORDER BY priority_rank, created_at, id
                LIMIT 1
                FOR UPDATE SKIP LOCKED)
  RETURNING *
), worker AS (
  INSERT INTO workers (id, work_item_id, lease_token, token_hash, status, spawner, host)
  SELECT %(worker_id)s, id, lease_token, %(token_hash)s, 'idle', %(spawner)s, %(host)s
    FROM claimed
  RETURNING id
)
SELECT claimed.* FROM claimed, worker;

-- name: claim
-- One named queued item gets a new lease (a worker that registers itself for it).
UPDATE work_items
   SET status = 'assigned', lease_token = gen_random_uuid(), attempts = attempts + 1,
       worker_id = %(worker_id)s, status_reason = %(reason)s, error = NULL, updated_at = now()
 WHERE id = %(id)s AND status = 'queued'
RETURNING *;

-- name: insert_worker
-- The worker row of a claim made by `claim`.
INSERT INTO workers (id, work_item_id, lease_token, token_hash, status, spawner, host)
VALUES (%(id)s, %(work_item_id)s, %(lease_token)s, %(token_hash)s, 'idle', %(spawner)s,
        %(host)s);

-- name: start
-- The worker registered: its item runs.
UPDATE work_items
   SET status = 'running', started_at = now(), status_reason = %(reason)s, updated_at = now()
 WHERE id = %(id)s AND status = 'assigned' AND lease_token = %(lease_token)s
RETURNING *;

-- name: mark_busy
-- The worker registered: it is busy, and its heartbeat clock starts now.
UPDATE workers SET status = 'busy', phase = 'setup', last_heartbeat = now(),
                   host = coalesce(nullif(%(host)s, ''), host)
 WHERE id = %(id)s AND status IN ('idle', 'busy') AND finished_at IS NULL
RETURNING id;

-- name: set_handle
-- Where the spawner started the worker: pid and its start time and host, or container.
UPDATE workers
   SET pid = %(pid)s, pid_start = %(pid_start)s, spawn_host = %(spawn_host)s,
       container_id = %(container_id)s
 WHERE id = %(id)s
RETURNING id;

-- name: record_exit
-- How the worker's process or container ended (the first report wins).
UPDATE workers SET exit_code = %(exit_code)s WHERE id = %(id)s AND exit_code IS NULL;

-- name: heartbeat
-- Only while the worker still holds its item's lease (held_item's condition, in the
-- same statement); no row otherwise. previous_phase is read from the row as it was.
UPDATE workers w
   SET last_heartbeat = now(), current_iteration = %(iteration)s,
       total_tokens = %(tokens)s, cost_usd = %(cost_usd)s, phase = %(phase)s,
       status = CASE WHEN %(phase)s = 'stuck' THEN 'stuck' ELSE 'busy' END
  FROM work_items i
 WHERE w.id = %(id)s AND worker_is_live(w.status, w.finished_at)
   AND i.id = w.work_item_id AND lease_is_current(i.status, i.lease_token, w.lease_token)
RETURNING w.*, worker_is_live(w.status, w.finished_at) AS live,
          (SELECT phase FROM workers p WHERE p.id = w.id) AS previous_phase;

-- name: record_iteration
-- One counted iteration (once per worker and number).
INSERT INTO iterations (worker_id, work_item_id, number, input_tokens, output_tokens,
                        cache_tokens, cost_usd, duration_ms, outcome)
VALUES (%(worker_id)s, %(work_item_id)s, %(number)s, %(input_tokens)s, %(output_tokens)s,
        %(cache_tokens)s, %(cost_usd)s, %(duration_ms)s, %(outcome)s)
ON CONFLICT (worker_id, number) DO NOTHING
RETURNING id;

-- name: add_event
-- An event on an item's audit trail other than a status change (phase, iteration, ...).
INSERT INTO work_item_events (work_item_id, kind, reason, data)
VALUES (%(id)s, %(kind)s, %(reason)s, %(data)s)
RETURNING *;

-- name: complete
-- The worker delivered: the item is completed with its PR and totals.
UPDATE work_items
   SET status = 'completed', pr_url = %(pr_url)s, iterations = %(iterations)s,
       tokens = %(tokens)s, cost_usd = %(cost_usd)s, completed_at = now(),
       status_reason = %(reason)s, updated_at = now()
 WHERE id = %(id)s AND status = 'running' AND lease_token = %(lease_token)s
RETURNING *;

-- name: fail
-- The item failed (the worker said so, or it was killed).
UPDATE work_items
   SET status = 'failed', error = %(error)s, completed_at = now(),
       iterations = greatest(iterations, %(iterations)s), tokens = greatest(tokens, %(tokens)s),
       cost_usd = greatest(cost_usd, %(cost_usd)s),
       status_reason = %(reason)s, updated_at = now()
 WHERE id = %(id)s AND item_is_held(status) AND lease_token = %(lease_token)s
RETURNING *;

-- name: mark_stuck
-- The worker gave up with a reason; the item waits for a human (or a retry).
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
 WHERE id = %(id)s AND item_is_held(status) AND lease_token = %(lease_token)s
RETURNING *;

-- name: lock_live_worker
-- A live worker's row, locked until the transaction ends (before it is finished).
SELECT id, work_item_id, lease_token FROM workers
 WHERE id = %(id)s AND worker_is_live(status, finished_at)
   FOR UPDATE;

-- name: insert_metrics
-- The worker's totals at its end (completed, failed or stuck).
INSERT INTO worker_metrics (worker_id, work_item_id, iterations, tokens_used, cost_usd,
                            duration_seconds, files_changed, status)
SELECT id, work_item_id, %(iterations)s, %(tokens)s, %(cost_usd)s,
       greatest(0, extract(epoch FROM now() - created_at))::int, %(files_changed)s, %(status)s
  FROM workers WHERE id = %(id)s;

-- name: finish_worker
-- The worker's end: done, stuck (reported) or dead (killed, crashed, shut down).
UPDATE workers SET status = %(status)s, finished_at = now(), phase = NULL
 WHERE id = %(id)s AND worker_is_live(status, finished_at)
RETURNING *, false AS live;

-- name: cancel
-- A user cancels an item that is not settled; old_lease is the lease it had, so the
-- worker holding it can be finished in the same transaction.
UPDATE work_items
   SET status = 'cancelled', completed_at = now(), status_reason = %(reason)s,
       lease_token = NULL, updated_at = now()
 WHERE id = %(id)s AND item_is_active(status)
RETURNING *, (SELECT lease_token FROM work_items p WHERE p.id = work_items.id) AS old_lease;

-- name: finish_holders
-- The live workers that held an item under `lease` (its cancel): dead now.
UPDATE workers SET status = 'dead', finished_at = now(), phase = NULL
 WHERE work_item_id = %(id)s AND lease_token = %(lease)s
   AND worker_is_live(status, finished_at)
RETURNING id;

-- name: cancel_queued
-- Intake cancels a source item's item only while nobody has claimed it.
UPDATE work_items
   SET status = 'cancelled', completed_at = now(), status_reason = %(reason)s,
       lease_token = NULL, updated_at = now()
 WHERE source = %(source)s AND repo = %(repo)s AND source_id = %(source_id)s
   AND status = 'queued'
RETURNING *;

-- name: retry
-- A user (or intake) starts a settled item over, attempts reset.
UPDATE work_items
   SET status = 'queued', attempts = 0, error = NULL, pr_url = NULL, worker_id = NULL,
       lease_token = NULL, started_at = NULL, completed_at = NULL, available_at = now(),
       status_reason = %(reason)s, updated_at = now()
 WHERE id = %(id)s AND status IN ('failed', 'stuck', 'cancelled')
RETURNING *;

-- name: set_priority
-- A user reorders a queued item.
UPDATE work_items SET priority = %(priority)s, updated_at = now()
 WHERE id = %(id)s AND status = 'queued'
RETURNING *;

-- name: record_merge
-- The item's pull request was merged (the first time seen counts).
UPDATE work_items SET pr_merged_at = coalesce(pr_merged_at, now())
 WHERE id = %(id)s AND status = 'completed' AND kind = 'work' AND pr_url IS NOT NULL
RETURNING *;
