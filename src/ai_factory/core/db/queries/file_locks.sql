-- File locks on PostgreSQL (used when REDIS_URL is unset). Keys are (repo, file_path).

-- name: purge_expired
-- Drop expired locks on the requested files, so that take can claim them.
DELETE FROM file_locks
 WHERE repo = %(repo)s AND file_path = ANY (%(files)s::text[]) AND expires_at < now();

-- name: take
-- Insert every missing lock; refresh the ones this worker already holds. Rows held by
-- another worker are left alone and not returned, which is how the caller sees conflicts.
INSERT INTO file_locks (repo, file_path, worker_id, expires_at)
SELECT %(repo)s, f, %(worker_id)s, now() + make_interval(secs => %(ttl_s)s)
  FROM unnest(%(files)s::text[]) AS f
ON CONFLICT (repo, file_path) DO UPDATE SET expires_at = EXCLUDED.expires_at
 WHERE file_locks.worker_id = EXCLUDED.worker_id
RETURNING file_path;

-- name: release
-- Release the named files of a repo that this worker holds; returns the paths freed.
DELETE FROM file_locks
 WHERE worker_id = %(worker_id)s AND repo = %(repo)s AND file_path = ANY (%(files)s::text[])
RETURNING file_path;

-- name: release_all
-- Release every lock a worker holds, when the worker ends.
DELETE FROM file_locks WHERE worker_id = %(worker_id)s RETURNING file_path;

-- name: renew
-- Push back the expiry of every lock a worker holds by the lock TTL (on each heartbeat).
UPDATE file_locks SET expires_at = now() + make_interval(secs => %(ttl_s)s)
 WHERE worker_id = %(worker_id)s;

-- name: holders
-- Who holds each unexpired lock in a repository.
SELECT file_path, worker_id FROM file_locks
 WHERE repo = %(repo)s AND expires_at >= now()
 ORDER BY file_path;
