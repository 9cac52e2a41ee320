-- Dashboard read models: lists joined for display and the series the charts draw.
-- Read only. Titles come from the first 300 characters of a spec (never the whole spec).

-- name: recent_events
-- The newest status events of all items, each with its item's repo and spec head.
SELECT e.id, e.work_item_id, e.kind, e.from_status, e.to_status, e.reason, e.data,
       e.created_at, w.repo, left(w.spec, 300) AS spec_head
  FROM work_item_events e
  JOIN work_items w ON w.id = e.work_item_id
 ORDER BY e.id DESC
 LIMIT %(limit)s;

-- name: items
-- Items by optional status, priority and repo: work in progress first, then by last change.
SELECT * FROM work_items
 WHERE (%(statuses)s::text[] IS NULL OR status = ANY (%(statuses)s::text[]))
   AND (%(priority)s::text IS NULL OR priority = %(priority)s)
   AND (%(repo)s::text IS NULL OR repo = %(repo)s)
 ORDER BY CASE status WHEN 'running' THEN 0 WHEN 'assigned' THEN 1 WHEN 'queued' THEN 2
                      WHEN 'stuck' THEN 3 ELSE 4 END,
          CASE WHEN status IN ('queued', 'assigned', 'running', 'stuck') THEN priority_rank END,
          CASE WHEN status = 'queued' THEN created_at END,
          updated_at DESC, id DESC
 LIMIT %(limit)s;

-- name: counts
-- How many items there are per status and priority, for the overview's totals.
SELECT status, priority, count(*)::int AS n FROM work_items GROUP BY status, priority;

-- name: repos
-- Repositories that have items, most recently used first, with their item counts.
SELECT repo, count(*)::int AS items, max(created_at) AS last_used
  FROM work_items GROUP BY repo ORDER BY max(created_at) DESC LIMIT %(limit)s;

-- name: workers
-- Workers with heartbeat age and their item; only live ones unless `all` is set.
SELECT k.*, worker_is_live(k.status, k.finished_at) AS live,
       extract(epoch FROM now() - k.last_heartbeat)::float AS heartbeat_age_s,
       w.repo AS item_repo, w.status AS item_status, left(w.spec, 300) AS spec_head
  FROM workers k
  LEFT JOIN work_items w ON w.id = k.work_item_id
 WHERE %(all)s OR worker_is_live(k.status, k.finished_at)
 ORDER BY worker_is_live(k.status, k.finished_at) DESC,
          k.created_at DESC
 LIMIT %(limit)s;

-- name: worker
-- One worker by id, with the same columns as workers.
SELECT k.*, worker_is_live(k.status, k.finished_at) AS live,
       extract(epoch FROM now() - k.last_heartbeat)::float AS heartbeat_age_s,
       w.repo AS item_repo, w.status AS item_status, left(w.spec, 300) AS spec_head
  FROM workers k
  LEFT JOIN work_items w ON w.id = k.work_item_id
 WHERE k.id = %(id)s;

-- name: item_workers
-- Every worker an item has had, oldest first, for the item's page.
SELECT k.*, worker_is_live(k.status, k.finished_at) AS live,
       extract(epoch FROM now() - k.last_heartbeat)::float AS heartbeat_age_s,
       w.repo AS item_repo, w.status AS item_status, left(w.spec, 300) AS spec_head
  FROM workers k
  JOIN work_items w ON w.id = k.work_item_id
 WHERE k.work_item_id = %(id)s
 ORDER BY k.created_at;

-- name: outcomes_since
-- Every time an item reached an end state (a retried item counts each time).
SELECT created_at, to_status AS status
  FROM work_item_events
 WHERE kind = 'status' AND to_status IN ('completed', 'failed', 'stuck')
   AND created_at >= %(since)s
 ORDER BY created_at;

-- name: finished_items
-- The last finished items (completed, failed, stuck) with their cost and duration.
SELECT id, left(spec, 300) AS spec_head, status, iterations, tokens, cost_usd::float AS cost_usd,
       extract(epoch FROM coalesce(completed_at, updated_at) - started_at)::float AS duration_s,
       coalesce(completed_at, updated_at) AS finished_at
  FROM work_items
 WHERE status IN ('completed', 'failed', 'stuck')
 ORDER BY coalesce(completed_at, updated_at) DESC
 LIMIT %(limit)s;

-- name: totals
-- All-time counts of completed, failed and stuck items, with their cost and tokens, and the
-- merged pull requests with their cost (the item and its follow-ups).
SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed,
       count(*) FILTER (WHERE status = 'failed')::int AS failed,
       count(*) FILTER (WHERE status = 'stuck')::int AS stuck,
       coalesce(sum(cost_usd) FILTER (WHERE status = 'completed'), 0)::float AS completed_cost_usd,
       coalesce(sum(cost_usd), 0)::float AS cost_usd,
       coalesce(sum(tokens), 0)::bigint AS tokens,
       count(*) FILTER (WHERE pr_merged_at IS NOT NULL)::int AS merged,
       coalesce(sum(cost_usd) FILTER (WHERE pr_merged_at IS NOT NULL
                                        OR parent_id IN (SELECT id FROM work_items
                                                          WHERE pr_merged_at IS NOT NULL)),
                0)::float AS merged_cost_usd
  FROM work_items;

-- name: learning_repos
-- Each repo (and the global scope) with its count of learnings and their uses.
SELECT repo, count(*)::int AS learnings, coalesce(sum(use_count), 0)::int AS uses
  FROM learnings GROUP BY repo ORDER BY count(*) DESC, repo LIMIT %(limit)s;
