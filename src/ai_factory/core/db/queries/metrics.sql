-- Metrics queries.

-- name: summary
-- The factory-wide summary (FactoryMetrics): item counts, averages (the agents' reported
-- cost per completed item, all its attempts; per merged pull request, with its follow-ups),
-- tokens today.
SELECT
  (SELECT count(*) FROM work_items)::int AS total_work_items,
  (SELECT count(*) FROM work_items WHERE status = 'completed')::int AS completed_work_items,
  (SELECT count(*) FROM work_items WHERE status = 'failed')::int AS failed_work_items,
  (SELECT coalesce(avg(iterations), 0) FROM worker_metrics WHERE status = 'completed')::float
    AS average_iterations,
  (SELECT coalesce(avg(duration_seconds), 0) FROM worker_metrics WHERE status = 'completed')::float
    AS average_duration,
  (SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM iterations
    WHERE created_at >= %(day_start)s)::bigint AS total_tokens_today,
  (SELECT coalesce(avg(cost_usd), 0) FROM work_items WHERE status = 'completed')::float
    AS cost_per_completed_item_usd,
  (SELECT count(*) FROM work_items WHERE pr_merged_at IS NOT NULL)::int AS merged_pull_requests,
  (SELECT coalesce(avg(root.cost_usd + coalesce(
      (SELECT sum(f.cost_usd) FROM work_items f WHERE f.parent_id = root.id), 0)), 0)
     FROM work_items root WHERE root.pr_merged_at IS NOT NULL)::float
    AS cost_per_merged_pr_usd,
  (SELECT count(*) FROM workers
    WHERE status IN ('idle', 'busy') AND finished_at IS NULL)::int AS active_workers,
  (SELECT count(*) FROM work_items WHERE status = 'queued')::int AS queue_depth;

-- name: recent
-- The newest per-worker metrics rows.
SELECT * FROM worker_metrics ORDER BY created_at DESC LIMIT %(limit)s;

