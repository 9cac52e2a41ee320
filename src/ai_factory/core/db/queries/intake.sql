-- GitHub intake: webhook deliveries and pending intake requests. (Cancelling an issue's
-- queued item is a work-item change: ledger.sql.)

-- name: record_delivery
-- A row back: first time this delivery id is seen. No row: a replay.
INSERT INTO webhook_deliveries (delivery_id, event, action, repo)
VALUES (%(delivery_id)s, %(event)s, %(action)s, %(repo)s)
ON CONFLICT (delivery_id) DO NOTHING
RETURNING delivery_id;

-- name: prune_deliveries
-- Forget deliveries older than the given number of days.
DELETE FROM webhook_deliveries WHERE received_at < now() - make_interval(days => %(days)s);

-- name: enqueue_request
-- Ask intake to look at an issue; no row when a request for it is already pending.
INSERT INTO intake_requests (repo, issue_number, reason, delivery_id)
VALUES (%(repo)s, %(issue_number)s, %(reason)s, %(delivery_id)s)
ON CONFLICT (lower(repo), issue_number) DO NOTHING
RETURNING *;

-- name: take_requests
-- Remove and return the oldest pending requests; concurrent takers skip each other's.
DELETE FROM intake_requests
 WHERE id IN (SELECT id FROM intake_requests ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING *;
