-- Vector search templates, one set per embedder. LearningStore fills {dims},
-- {embedder} and {index} once with psycopg.sql literals and identifiers: the vector
-- type needs its dimension written out, and the planner only uses the embedder's
-- partial HNSW index when it sees the embedder's name as a constant in the query.
-- The ORDER BY expression must stay the index's expression, ((embedding::vector(N))).

-- name: rank_vector
-- Learnings of every repo nearest the query's embedding (cosine similarity).
SELECT id, 1 - ((embedding::vector({dims})) <=> %(embedding)s::vector({dims})) AS score
  FROM learnings
 WHERE embedder = {embedder} AND obsolete_at IS NULL
 ORDER BY (embedding::vector({dims})) <=> %(embedding)s::vector({dims})
 LIMIT %(candidates)s;

-- name: rank_vector_in
-- Learnings of the given repos nearest the query's embedding (cosine).
SELECT id, 1 - ((embedding::vector({dims})) <=> %(embedding)s::vector({dims})) AS score
  FROM learnings
 WHERE embedder = {embedder} AND repo = ANY (%(repos)s::text[]) AND obsolete_at IS NULL
 ORDER BY (embedding::vector({dims})) <=> %(embedding)s::vector({dims})
 LIMIT %(candidates)s;

-- name: create_vector_index
-- This embedder's partial HNSW index, unless it exists.
CREATE INDEX IF NOT EXISTS {index} ON learnings
  USING hnsw ((embedding::vector({dims})) vector_cosine_ops)
  WHERE embedder = {embedder};
