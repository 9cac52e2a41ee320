-- Learnings: save (deduplicated), list, rank by full-text, count uses, and the settings
-- of a vector search. The vector queries themselves depend on the embedder and live in
-- ai_factory/core/learnings/vector.sql.

-- name: upsert
INSERT INTO learnings (repo, content, source_worker_id, source_work_item_id, embedder, embedding)
VALUES (%(repo)s, %(content)s, %(worker_id)s, %(work_item_id)s, %(embedder)s, %(embedding)s::real[])
ON CONFLICT (repo, content_key) DO UPDATE
   SET save_count = learnings.save_count + 1,
       last_saved_at = now(),
       -- a vector from an embedder no longer configured is replaced by the current one
       embedder = coalesce(EXCLUDED.embedder, learnings.embedder),
       embedding = CASE WHEN EXCLUDED.embedder IS NULL THEN learnings.embedding
                        ELSE EXCLUDED.embedding END
RETURNING id, repo, scope, content, source_worker_id, source_work_item_id,
          use_count, save_count, created_at, last_saved_at, (xmax = 0) AS inserted;

-- name: list_recent
-- Every query comes in two forms, over all repos and over some (`_in`), rather than one
-- with "repos IS NULL OR ...": psycopg prepares a statement run often, and a generic
-- plan of the OR form cannot use the repo index.
SELECT id, repo, scope, content, source_worker_id, source_work_item_id,
       use_count, save_count, created_at, last_saved_at
  FROM learnings
 ORDER BY created_at DESC, id
 LIMIT %(limit)s;

-- name: list_recent_in
SELECT id, repo, scope, content, source_worker_id, source_work_item_id,
       use_count, save_count, created_at, last_saved_at
  FROM learnings
 WHERE repo = ANY (%(repos)s::text[])
 ORDER BY created_at DESC, id
 LIMIT %(limit)s;

-- name: rank_text
-- Any query word may match (OR): a worker searches with a whole spec, and requiring
-- every word of it would find nothing.
WITH q AS (
  SELECT replace(plainto_tsquery('english', %(query)s)::text, ' & ', ' | ')::tsquery AS tsq
)
SELECT l.id, ts_rank(l.tsv, q.tsq) AS score
  FROM learnings l, q
 WHERE l.tsv @@ q.tsq
 ORDER BY score DESC, l.created_at DESC, l.id
 LIMIT %(candidates)s;

-- name: rank_text_in
-- The scope first, then the match: a repo's learnings and the global ones are a few
-- hundred or thousand rows, while a query word as common as "add" matches a large part
-- of all learnings in the GIN index (13 ms of 14 at 100k rows, where the scope-first
-- plan takes under 1 ms). The fence keeps the planner from combining the two indexes.
WITH q AS (
  SELECT replace(plainto_tsquery('english', %(query)s)::text, ' & ', ' | ')::tsquery AS tsq
), scope AS MATERIALIZED (
  SELECT id, tsv, created_at FROM learnings WHERE repo = ANY (%(repos)s::text[])
)
SELECT s.id, ts_rank(s.tsv, q.tsq) AS score
  FROM scope s, q
 WHERE s.tsv @@ q.tsq
 ORDER BY score DESC, s.created_at DESC, s.id
 LIMIT %(candidates)s;

-- name: vector_version
SELECT extversion AS version FROM pg_extension WHERE extname = 'vector';

-- name: hnsw_ef_search
SELECT set_config('hnsw.ef_search', %(ef_search)s, true);

-- name: hnsw_iterative_scan
-- Filtered HNSW scans stop early without this (pgvector >= 0.8): a repo holding 1% of
-- the rows would get about one candidate out of the default 40.
SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true);

-- name: lock_index_creation
SELECT pg_advisory_xact_lock(hashtext('ai_factory.learnings.vector_index'));

-- name: fetch
SELECT id, repo, scope, content, source_worker_id, source_work_item_id,
       use_count, save_count, created_at, last_saved_at
  FROM learnings WHERE id = ANY (%(ids)s::uuid[]);

-- name: fetch_counting_use
UPDATE learnings SET use_count = use_count + 1
 WHERE id = ANY (%(ids)s::uuid[])
RETURNING id, repo, scope, content, source_worker_id, source_work_item_id,
          use_count, save_count, created_at, last_saved_at;

-- name: delete
DELETE FROM learnings WHERE id = %(id)s RETURNING id;

-- name: stale_embeddings
SELECT id, content FROM learnings
 WHERE embedder IS DISTINCT FROM %(embedder)s AND id > %(after)s
 ORDER BY id
 LIMIT %(batch)s;

-- name: set_embedding
UPDATE learnings SET embedder = %(embedder)s, embedding = %(embedding)s::real[]
 WHERE id = %(id)s;
