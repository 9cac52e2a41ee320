-- Worker reads. Every change to workers is in ledger.sql. `live` and `holds_item` come
-- from the SQL functions of migration 007 (worker_is_live, lease_is_current).

-- name: get
-- One worker row, secrets included (token hash, lease), with whether it is live.
SELECT *, worker_is_live(status, finished_at) AS live FROM workers WHERE id = %(id)s;

-- name: list
-- Live workers (or all with `all`), newest first.
SELECT *, worker_is_live(status, finished_at) AS live FROM workers
 WHERE %(all)s OR worker_is_live(status, finished_at)
 ORDER BY created_at DESC
 LIMIT %(limit)s;

-- name: stats
-- Live workers per status.
SELECT status, count(*)::int AS n FROM workers
 WHERE worker_is_live(status, finished_at) GROUP BY status;

-- name: held_item
-- The item a live worker still holds the lease of; no row once the worker was finished,
-- or the item moved on (cancelled, requeued, claimed by another worker).
SELECT i.* FROM workers w JOIN work_items i ON i.id = w.work_item_id
 WHERE w.id = %(id)s AND worker_is_live(w.status, w.finished_at)
   AND lease_is_current(i.status, i.lease_token, w.lease_token);

-- name: state
-- What supervision needs of one worker: its handle, silence, age, its item's state.
SELECT w.id, w.work_item_id, w.status, w.spawner, w.container_id, w.pid, w.pid_start,
       w.spawn_host, w.exit_code,
       worker_is_live(w.status, w.finished_at) AS live,
       coalesce(lease_is_current(i.status, i.lease_token, w.lease_token), false) AS holds_item,
       extract(epoch FROM now() - w.last_heartbeat)::float AS silent_s,
       extract(epoch FROM now() - w.created_at)::float AS age_s,
       i.status AS item_status
  FROM workers w LEFT JOIN work_items i ON i.id = w.work_item_id
 WHERE w.id = %(id)s;

-- name: live_states
-- The same for every live worker, oldest first (the health check's and recovery's view).
SELECT w.id, w.work_item_id, w.status, w.spawner, w.container_id, w.pid, w.pid_start,
       w.spawn_host, w.exit_code,
       true AS live,
       coalesce(lease_is_current(i.status, i.lease_token, w.lease_token), false) AS holds_item,
       extract(epoch FROM now() - w.last_heartbeat)::float AS silent_s,
       extract(epoch FROM now() - w.created_at)::float AS age_s,
       i.status AS item_status
  FROM workers w LEFT JOIN work_items i ON i.id = w.work_item_id
 WHERE worker_is_live(w.status, w.finished_at)
 ORDER BY w.created_at;

-- name: orphaned_items
-- Claimed items no live worker holds the lease of (an orchestrator died between the
-- claim and the spawn, or a worker row was finished without moving the item).
SELECT i.id, i.lease_token FROM work_items i
 WHERE item_is_held(i.status)
   AND i.updated_at < now() - make_interval(secs => %(grace_s)s)
   AND NOT EXISTS (
         SELECT 1 FROM workers w
          WHERE w.work_item_id = i.id AND w.lease_token IS NOT DISTINCT FROM i.lease_token
            AND worker_is_live(w.status, w.finished_at));

-- name: ids_between
-- Ids in a range (a prefix typed by a user); two rows are enough to call it ambiguous.
SELECT id FROM workers WHERE id BETWEEN %(low)s AND %(high)s ORDER BY id LIMIT 2;
