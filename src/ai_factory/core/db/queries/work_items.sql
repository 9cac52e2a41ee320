-- Work-item reads. Every change to work_items is in ledger.sql.

-- name: get
-- One item by id.
SELECT * FROM work_items WHERE id = %(id)s;

-- name: get_active_by_source
-- The active item of a source item (the one a repeated submit returns).
SELECT * FROM work_items
 WHERE source = %(source)s AND repo = %(repo)s AND source_id = %(source_id)s
   AND item_is_active(status);

-- name: list
-- Items, newest first, filtered by status, repository and source.
SELECT * FROM work_items
 WHERE (%(statuses)s::text[] IS NULL OR status = ANY (%(statuses)s::text[]))
   AND (%(repo)s::text IS NULL OR repo = %(repo)s)
   AND (%(source)s::text IS NULL OR source = %(source)s)
   AND (%(source_id)s::text IS NULL OR source_id = %(source_id)s)
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s OFFSET %(offset)s;

-- name: has_claimable
-- Whether a claim would find an item now (reads the claim index only).
SELECT EXISTS (SELECT 1 FROM work_items
                WHERE status = 'queued' AND available_at <= now()) AS found;

-- name: stats
-- Items per status.
SELECT status, count(*)::int AS n FROM work_items GROUP BY status;

-- name: events
-- An item's audit trail after event id `after`, oldest first.
SELECT * FROM work_item_events
 WHERE work_item_id = %(id)s AND id > %(after)s
 ORDER BY id
 LIMIT %(limit)s;

-- name: ids_between
-- Ids in a range (a prefix typed by a user); two rows are enough to call it ambiguous.
SELECT id FROM work_items WHERE id BETWEEN %(low)s AND %(high)s ORDER BY id LIMIT 2;

-- name: chain
-- An item's parent and the follow-ups of the same parent (the pull request's chain).
SELECT id, kind, status, pr_url, created_at, parent_id FROM work_items
 WHERE id = %(parent)s OR parent_id = %(parent)s
 ORDER BY created_at, id;
