-- Learnings: save (deduplicated), list, rank by full-text, count uses and deliveries, edit,
-- mark obsolete, and the settings of a vector search. The pgvector queries depend on the
-- embedder and live in ai_factory/core/learnings/vector.sql. Obsolete learnings are listed
-- (when asked) but never ranked, merged into or given to a worker.

-- name: upsert
-- Save a learning, or count one more save of the same text in the same repo.
INSERT INTO learnings (repo, content, source_worker_id, source_work_item_id, embedder, embedding)
VALUES (%(repo)s, %(content)s, %(worker_id)s, %(work_item_id)s, %(embedder)s, %(embedding)s::real[])
ON CONFLICT (repo, content_key) DO UPDATE
   SET save_count = learnings.save_count + 1,
       last_saved_at = now(),
       -- a vector from an embedder no longer configured is replaced by the current one
       embedder = coalesce(EXCLUDED.embedder, learnings.embedder),
       embedding = CASE WHEN EXCLUDED.embedder IS NULL THEN learnings.embedding
                        ELSE EXCLUDED.embedding END
RETURNING id, (xmax = 0) AS inserted;

-- name: merge_into
-- Count one more save of a learning that a new text repeats in other words.
UPDATE learnings SET save_count = save_count + 1, last_saved_at = now()
 WHERE id = %(id)s AND obsolete_at IS NULL
RETURNING id;

-- name: list_recent
-- The newest learnings of all repos (a listing without a search).
-- Every query comes in two forms, over all repos and over some (`_in`), rather than one
-- with "repos IS NULL OR ...": psycopg prepares a statement run often, and a generic
-- plan of the OR form cannot use the repo index.
SELECT * FROM learnings_shown
 WHERE obsolete_at IS NULL OR %(obsolete)s
 ORDER BY created_at DESC, id
 LIMIT %(limit)s;

-- name: list_recent_in
-- The newest learnings of the given repos.
SELECT * FROM learnings_shown
 WHERE repo = ANY (%(repos)s::text[]) AND (obsolete_at IS NULL OR %(obsolete)s)
 ORDER BY created_at DESC, id
 LIMIT %(limit)s;

-- name: rank_text
-- Over all repos (a listing, not a worker's search): ts_rank over an OR of the query's
-- words. BM25 (rank_text_in) needs every matching row's lexemes, and a word as common
-- as "add" matches a large part of the table: seconds at 100k rows instead of 0.2 s.
WITH q AS (
  SELECT replace(plainto_tsquery('english', %(query)s)::text, ' & ', ' | ')::tsquery AS tsq
)
SELECT l.id, ts_rank(l.tsv, q.tsq) AS score
  FROM learnings l, q
 WHERE l.tsv @@ q.tsq AND l.obsolete_at IS NULL
 ORDER BY score DESC, l.created_at DESC, l.id
 LIMIT %(candidates)s;

-- name: rank_text_in
-- Okapi BM25 (k1 = 1.2, b = 0.75, the usual defaults, not tuned here) over an OR of the
-- query's words: a worker searches with a whole spec, and requiring every word of it
-- would find nothing. Unlike ts_rank, BM25 weighs each word by how rare it is among the
-- learnings searched (its IDF), so a learning sharing a spec's one unusual word ranks
-- above one sharing its common ones ("add", "new", "test"). The statistics (number of
-- learnings, average length, document frequencies) are those of the scope searched;
-- a learning's length is its number of distinct lexemes.
-- The scope first, then the match: a repo's learnings and the global ones are a few
-- hundred or thousand rows, while a query word as common as "add" matches a large part
-- of all learnings in the GIN index (13 ms of 14 at 100k rows, where the scope-first
-- plan takes under 1 ms). The fence keeps the planner from combining the two indexes.
WITH q AS (
  SELECT replace(plainto_tsquery('english', %(query)s)::text, ' & ', ' | ')::tsquery AS tsq,
         tsvector_to_array(to_tsvector('english', %(query)s)) AS lexemes
), scope AS MATERIALIZED (
  SELECT id, tsv, created_at, length(tsv) AS dl
    FROM learnings WHERE repo = ANY (%(repos)s::text[]) AND obsolete_at IS NULL
), stats AS (
  SELECT count(*) AS n, avg(dl) AS avgdl FROM scope
), matched AS (
  SELECT s.id, s.created_at, s.dl, t.lexeme, greatest(cardinality(t.positions), 1) AS tf
    FROM scope s, q, unnest(s.tsv) t
   WHERE s.tsv @@ q.tsq AND t.lexeme = ANY (q.lexemes)
), df AS (
  SELECT lexeme, count(*) AS df FROM matched GROUP BY lexeme
)
SELECT m.id,
       sum(ln(1 + (st.n - df.df + 0.5) / (df.df + 0.5))
           * m.tf * 2.2 / (m.tf + 1.2 * (0.25 + 0.75 * m.dl / st.avgdl))) AS score
  FROM matched m JOIN df USING (lexeme), stats st
 GROUP BY m.id, m.created_at
 ORDER BY score DESC, m.created_at DESC, m.id
 LIMIT %(candidates)s;

-- name: vector_version
-- The installed pgvector version (no row without the extension).
SELECT extversion AS version FROM pg_extension WHERE extname = 'vector';

-- name: hnsw_ef_search
-- Widen the HNSW candidate list to the search's depth, for this transaction only.
SELECT set_config('hnsw.ef_search', %(ef_search)s, true);

-- name: hnsw_iterative_scan
-- Let a filtered HNSW scan go on until it has enough rows, for this transaction only.
-- Filtered HNSW scans stop early without this (pgvector >= 0.8): a repo holding 1% of
-- the rows would get about one candidate out of the default 40.
SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true);

-- name: lock_index_creation
-- Serialise vector index creation across processes until the transaction ends.
SELECT pg_advisory_xact_lock(hashtext('ai_factory.learnings.vector_index'));

-- name: fetch
-- The learnings with the given ids, in no particular order.
SELECT * FROM learnings_shown WHERE id = ANY (%(ids)s::uuid[]);

-- name: count_use
-- One more use of each learning with the given ids (a search's results).
UPDATE learnings SET use_count = use_count + 1 WHERE id = ANY (%(ids)s::uuid[]);

-- name: record_delivery
-- The learnings with the given ids went into the context of a worker on the item.
WITH given AS (
  INSERT INTO learning_deliveries (learning_id, work_item_id)
  SELECT unnest(%(ids)s::uuid[]), %(item)s
  ON CONFLICT (learning_id, work_item_id) DO UPDATE SET given_at = now()
)
UPDATE learnings
   SET use_count = use_count + 1, last_given_at = now(), last_given_work_item_id = %(item)s
 WHERE id = ANY (%(ids)s::uuid[]);

-- name: completed_counts
-- How many items that completed each of the given learnings was given to (none: no row).
SELECT d.learning_id AS id, count(*) AS completed
  FROM learning_deliveries d JOIN work_items w ON w.id = d.work_item_id
 WHERE d.learning_id = ANY (%(ids)s::uuid[]) AND w.status = 'completed'
 GROUP BY d.learning_id;

-- name: scope_sizes
-- Learnings of the given repos that a worker may be given: their ids and lengths, newest
-- first (the context fills up from these when every one fits the budget).
SELECT id, char_length(content) AS chars
  FROM learnings
 WHERE repo = ANY (%(repos)s::text[]) AND obsolete_at IS NULL
 ORDER BY created_at DESC, id;

-- name: edit
-- New text for a learning (and its vector); no row when it does not exist.
UPDATE learnings
   SET content = %(content)s, embedder = %(embedder)s, embedding = %(embedding)s::real[],
       updated_at = now()
 WHERE id = %(id)s
RETURNING id;

-- name: mark_obsolete
-- Mark a learning obsolete (or current again); no row when it does not exist.
UPDATE learnings
   SET obsolete_at = CASE WHEN %(obsolete)s THEN coalesce(obsolete_at, now()) END,
       updated_at = now()
 WHERE id = %(id)s
RETURNING id;

-- name: delete
-- Delete one learning; no row when it does not exist.
DELETE FROM learnings WHERE id = %(id)s RETURNING id;

-- name: stale_embeddings
-- The next batch (by id) of learnings whose vector is not from the given embedder.
SELECT id, content FROM learnings
 WHERE embedder IS DISTINCT FROM %(embedder)s AND id > %(after)s
 ORDER BY id
 LIMIT %(batch)s;

-- name: set_embedding
-- Store a learning's vector and the name of the embedder that made it.
UPDATE learnings SET embedder = %(embedder)s, embedding = %(embedding)s::real[]
 WHERE id = %(id)s;

-- name: scope_versions
-- The version of each given repo's learnings (no row: never had any).
SELECT repo, version FROM learning_scopes WHERE repo = ANY (%(repos)s::text[]);

-- name: all_scope_versions
-- The version of every repo's learnings.
SELECT repo, version FROM learning_scopes;

-- name: repo_vectors
-- The vectors of one repo's current learnings from the given embedder (for exact ranking).
SELECT id, embedding FROM learnings
 WHERE repo = %(repo)s AND embedder = %(embedder)s AND obsolete_at IS NULL;

-- name: vectors_of
-- The vectors from the given embedder of the learnings with the given ids.
SELECT id, embedding FROM learnings
 WHERE id = ANY (%(ids)s::uuid[]) AND embedder = %(embedder)s;

-- name: estimated_rows
-- The planner's estimate of the number of learnings (free: no scan).
SELECT greatest(reltuples, 0)::bigint AS rows FROM pg_class WHERE oid = 'learnings'::regclass;
