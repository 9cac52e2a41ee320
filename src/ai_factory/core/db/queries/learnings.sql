-- Learnings (basic store; full-text search).

-- name: insert
INSERT INTO learnings (repo, content, source_worker_id, source_work_item_id)
VALUES (%(repo)s, %(content)s, %(worker_id)s, %(work_item_id)s)
RETURNING *;

-- name: search
WITH hits AS (
  SELECT id FROM learnings
   WHERE (%(repo)s::text IS NULL OR repo = %(repo)s)
     AND (%(query)s::text IS NULL
          OR to_tsvector('english', content) @@ websearch_to_tsquery('english', %(query)s))
   ORDER BY CASE WHEN %(query)s::text IS NULL THEN 0
                 ELSE ts_rank(to_tsvector('english', content),
                              websearch_to_tsquery('english', %(query)s)) END DESC,
            created_at DESC
   LIMIT %(limit)s
)
UPDATE learnings l SET use_count = use_count + CASE WHEN %(count_use)s THEN 1 ELSE 0 END
  FROM hits WHERE l.id = hits.id
RETURNING l.*;

-- name: delete
DELETE FROM learnings WHERE id = %(id)s RETURNING id;
