-- 002: learnings become searchable shared memory.
--
-- * scope: 'global' when repo = '*' (the store's marker for "every repository"),
--   else 'repo'. Generated, so it can never disagree with repo.
-- * content_key: a hash of the normalized text (case, runs of whitespace, a leading
--   list bullet and trailing punctuation ignored). UNIQUE (repo, content_key) keeps one
--   row per learning and scope; saving it again bumps save_count and last_saved_at.
--   The normalization lives here only, so every writer agrees on it.
-- * tsv: the full-text document (english), GIN-indexed; works on every server.
-- * embedding REAL[] + embedder: the vector and the name of the embedder that made it
--   (the name carries the dimension, e.g. 'wordllama-l2_supercat-256'). The column is a
--   plain array, not vector(N), because
--     - the dimension follows the configured embedder, which is chosen at run time and
--       may change: a typed vector(1536) would fit one model only;
--     - the machine's server may have no pgvector, and the schema must be the same there
--       (vectors are kept, so moving to a server with pgvector needs no re-embedding).
--   Where pgvector exists, LearningStore creates one partial HNSW index per embedder the
--   first time it sees it:
--     CREATE INDEX ... USING hnsw ((embedding::vector(N)) vector_cosine_ops)
--       WHERE embedder = '<name>'
--   and searches with the same expression, so rows of other embedders (or of a previous
--   configuration) never mix dimensions. Without pgvector search is full-text only.
-- * Existing duplicates are merged into the oldest row before the unique index exists.

ALTER TABLE learnings
  ADD COLUMN scope TEXT GENERATED ALWAYS AS
    (CASE WHEN repo = '*' THEN 'global' ELSE 'repo' END) STORED,
  ADD COLUMN content_key TEXT GENERATED ALWAYS AS (md5(lower(
    regexp_replace(
      regexp_replace(content, '[[:space:]]+', ' ', 'g'),
      '^[[:space:]]*([-*+][[:space:]]+)?|[[:space:].!;:,]+$', '', 'g')))) STORED,
  ADD COLUMN save_count INT NOT NULL DEFAULT 1,
  ADD COLUMN last_saved_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  ADD COLUMN embedder TEXT,
  ADD COLUMN embedding REAL[],
  ADD COLUMN tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', content)) STORED;

-- New rows must have text of at most 4096 characters (the API's limit); NOT VALID leaves
-- any older row alone.
ALTER TABLE learnings
  ADD CONSTRAINT learning_content_valid
    CHECK (btrim(content) <> '' AND char_length(content) <= 4096) NOT VALID,
  ADD CONSTRAINT learning_repo_not_empty CHECK (repo <> '') NOT VALID,
  ADD CONSTRAINT learning_embedding_named
    CHECK ((embedding IS NULL) = (embedder IS NULL)) NOT VALID;

WITH ranked AS (
  SELECT id,
         row_number() OVER w AS position,
         count(*) OVER w AS copies,
         sum(use_count) OVER w AS uses
    FROM learnings
  WINDOW w AS (PARTITION BY repo, content_key ORDER BY created_at, id
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), merged AS (
  UPDATE learnings l SET save_count = r.copies, use_count = r.uses
    FROM ranked r
   WHERE l.id = r.id AND r.position = 1 AND r.copies > 1
)
DELETE FROM learnings l USING ranked r WHERE l.id = r.id AND r.position > 1;

CREATE UNIQUE INDEX learnings_content ON learnings (repo, content_key);
DROP INDEX learnings_repo;
CREATE INDEX learnings_repo_recent ON learnings (repo, created_at DESC);
CREATE INDEX learnings_tsv ON learnings USING gin (tsv);
