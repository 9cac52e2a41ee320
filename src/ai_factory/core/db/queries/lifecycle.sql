-- Runtime supervision of workers: capacity, the processes and containers behind worker
-- rows, staleness, and items left without a live worker. Item transitions themselves go
-- through the fenced queries in work_items.sql.

-- name: set_handle
UPDATE workers
   SET pid = %(pid)s, pid_start = %(pid_start)s, spawn_host = %(spawn_host)s,
       container_id = %(container_id)s
 WHERE id = %(id)s
RETURNING id;

-- name: record_exit
UPDATE workers SET exit_code = %(exit_code)s WHERE id = %(id)s AND exit_code IS NULL;

-- name: get
SELECT w.id, w.work_item_id, w.lease_token, w.status, w.spawner, w.container_id, w.pid,
       w.pid_start, w.spawn_host, w.exit_code, w.finished_at,
       extract(epoch FROM now() - w.last_heartbeat)::float AS silent_s,
       extract(epoch FROM now() - w.created_at)::float AS age_s,
       i.status AS item_status, i.lease_token AS item_lease
  FROM workers w LEFT JOIN work_items i ON i.id = w.work_item_id
 WHERE w.id = %(id)s;

-- name: active
SELECT w.id, w.work_item_id, w.lease_token, w.status, w.spawner, w.container_id, w.pid,
       w.pid_start, w.spawn_host, w.exit_code, w.finished_at,
       extract(epoch FROM now() - w.last_heartbeat)::float AS silent_s,
       extract(epoch FROM now() - w.created_at)::float AS age_s,
       i.status AS item_status, i.lease_token AS item_lease
  FROM workers w LEFT JOIN work_items i ON i.id = w.work_item_id
 WHERE w.status IN ('idle', 'busy', 'stuck') AND w.finished_at IS NULL
 ORDER BY w.created_at;

-- name: orphaned_items
-- Claimed items no live worker holds the lease of (the orchestrator died between the
-- claim and the spawn, or the worker row was finished without moving the item).
SELECT i.id, i.lease_token, i.status FROM work_items i
 WHERE i.status IN ('assigned', 'running')
   AND i.updated_at < now() - make_interval(secs => %(grace_s)s)
   AND NOT EXISTS (
         SELECT 1 FROM workers w
          WHERE w.work_item_id = i.id AND w.lease_token IS NOT DISTINCT FROM i.lease_token
            AND w.status IN ('idle', 'busy', 'stuck') AND w.finished_at IS NULL);
