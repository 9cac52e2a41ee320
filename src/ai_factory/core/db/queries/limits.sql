-- Rate-limiter queries: subscription windows, usage counted from recorded iterations.

-- name: record_window
-- Store the latest reported state of a subscription window (5-hour, weekly ...). A
-- rejection in force is not lifted by a report that is not one: another worker's
-- warning, sent before the refusal but arriving after it, must not end the pause.
INSERT INTO usage_limits (window_type, status, resets_at, utilization, message,
                          work_item_id, worker_id, updated_at)
VALUES (%(window_type)s, %(status)s, %(resets_at)s, %(utilization)s, %(message)s,
        %(work_item_id)s, %(worker_id)s, now())
ON CONFLICT (window_type) DO UPDATE
   SET status = EXCLUDED.status,
       resets_at = coalesce(EXCLUDED.resets_at, usage_limits.resets_at),
       utilization = coalesce(EXCLUDED.utilization, usage_limits.utilization),
       message = EXCLUDED.message, work_item_id = EXCLUDED.work_item_id,
       worker_id = EXCLUDED.worker_id, updated_at = now()
 WHERE EXCLUDED.status = 'rejected' OR usage_limits.status <> 'rejected'
    OR usage_limits.resets_at IS NULL OR usage_limits.resets_at <= now();

-- name: windows
-- Every subscription window's latest reported state.
SELECT * FROM usage_limits ORDER BY window_type;

-- name: usage_since
-- Iterations, cost and tokens recorded since a moment (start of the day or month).
SELECT count(*)::int AS iterations, coalesce(sum(cost_usd), 0)::float AS cost_usd,
       coalesce(sum(input_tokens + output_tokens), 0)::bigint AS tokens
  FROM iterations WHERE created_at >= %(since)s;

-- name: spawn_state
-- Live workers (the scheduler's MAX_WORKERS count) and the last spawn (the cooldown).
SELECT (SELECT count(*) FROM workers WHERE worker_is_live(status, finished_at))::int AS active,
       (SELECT max(created_at) FROM workers) AS last_spawn_at,
       now() AS db_now;

-- name: single_file_worker
-- Near a usage limit, the one worker that may send requests: the longest-running live one
-- that is not stuck (every orchestrator reads the same answer; when it ends, the next one
-- has it).
SELECT id FROM workers
 WHERE worker_is_live(status, finished_at) AND status <> 'stuck'
 ORDER BY created_at, id LIMIT 1;
