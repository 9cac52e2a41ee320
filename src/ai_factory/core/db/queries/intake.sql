-- GitHub intake: webhook deliveries, pending intake requests, and the one work-item
-- transition intake makes itself (cancel an item nobody has claimed yet).

-- name: record_delivery
-- A row back: first time this delivery id is seen. No row: a replay.
INSERT INTO webhook_deliveries (delivery_id, event, action, repo)
VALUES (%(delivery_id)s, %(event)s, %(action)s, %(repo)s)
ON CONFLICT (delivery_id) DO NOTHING
RETURNING delivery_id;

-- name: prune_deliveries
DELETE FROM webhook_deliveries WHERE received_at < now() - make_interval(days => %(days)s);

-- name: enqueue_request
INSERT INTO intake_requests (repo, issue_number, reason, delivery_id)
VALUES (%(repo)s, %(issue_number)s, %(reason)s, %(delivery_id)s)
ON CONFLICT (lower(repo), issue_number) DO NOTHING
RETURNING *;

-- name: take_requests
DELETE FROM intake_requests
 WHERE id IN (SELECT id FROM intake_requests ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: cancel_queued
-- Only an item still queued: one a worker has claimed is left to finish or fail.
UPDATE work_items
   SET status = 'cancelled', completed_at = now(), status_reason = %(reason)s,
       lease_token = NULL, updated_at = now()
 WHERE source = 'github' AND repo = %(repo)s AND source_id = %(source_id)s
   AND status = 'queued'
RETURNING *;
