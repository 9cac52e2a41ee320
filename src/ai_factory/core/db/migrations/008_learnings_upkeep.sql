-- 008: learnings that stay useful as they grow, and vector search on any server.
--
-- * updated_at: when the text (or its obsolete mark) last changed; an edit re-embeds.
-- * obsolete_at: set when a person marks a learning obsolete. Obsolete learnings are kept
--   (and listed) but never searched for, given to a worker, or merged into.
-- * last_given_at, last_given_work_item_id: when the learning last went into a worker's
--   context, and for which item; whether that item completed is the item's status.
-- * learning_deliveries: every (learning, item) it was given to. Search can prefer
--   learnings given to items that completed (a count over this table and work_items).
-- * learning_scopes: a version per repo value, raised by triggers whenever a learning of
--   that repo is added, deleted, re-embedded, moved or marked (not when it is merely used).
--   Without pgvector the store ranks by exact cosine similarity in the orchestrator, from
--   a per-repo cache of vectors it checks against these versions (one indexed read), so
--   every orchestrator on the database sees every change without reading the vectors again.

ALTER TABLE learnings
  ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  ADD COLUMN obsolete_at TIMESTAMPTZ,
  ADD COLUMN last_given_at TIMESTAMPTZ,
  ADD COLUMN last_given_work_item_id UUID REFERENCES work_items (id) ON DELETE SET NULL;

CREATE TABLE learning_deliveries (
  learning_id   UUID NOT NULL REFERENCES learnings (id) ON DELETE CASCADE,
  work_item_id  UUID NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
  given_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (learning_id, work_item_id)
);
CREATE INDEX learning_deliveries_item ON learning_deliveries (work_item_id);

CREATE SEQUENCE learning_scope_version;
CREATE TABLE learning_scopes (
  repo     TEXT PRIMARY KEY,
  version  BIGINT NOT NULL
);

CREATE FUNCTION learnings_bump_scopes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- One new version per repo touched by the statement (statement-level: a COPY of
  -- 100,000 rows bumps each repo once). Subquery first, so nextval runs once per repo.
  IF TG_OP = 'INSERT' THEN
    INSERT INTO learning_scopes (repo, version)
      SELECT repo, nextval('learning_scope_version') FROM (SELECT DISTINCT repo FROM new_rows) r
      ON CONFLICT (repo) DO UPDATE SET version = EXCLUDED.version;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO learning_scopes (repo, version)
      SELECT repo, nextval('learning_scope_version') FROM (SELECT DISTINCT repo FROM old_rows) r
      ON CONFLICT (repo) DO UPDATE SET version = EXCLUDED.version;
  ELSE
    INSERT INTO learning_scopes (repo, version)
      SELECT repo, nextval('learning_scope_version') FROM (
        SELECT DISTINCT v.repo
          FROM new_rows n JOIN old_rows o USING (id),
               LATERAL (VALUES (n.repo), (o.repo)) v (repo)
         WHERE n.repo IS DISTINCT FROM o.repo
            OR n.embedder IS DISTINCT FROM o.embedder
            OR n.embedding IS DISTINCT FROM o.embedding
            OR n.obsolete_at IS DISTINCT FROM o.obsolete_at) r
      ON CONFLICT (repo) DO UPDATE SET version = EXCLUDED.version;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER learnings_scope_insert AFTER INSERT ON learnings
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION learnings_bump_scopes();
CREATE TRIGGER learnings_scope_update AFTER UPDATE ON learnings
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION learnings_bump_scopes();
CREATE TRIGGER learnings_scope_delete AFTER DELETE ON learnings
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION learnings_bump_scopes();

INSERT INTO learning_scopes (repo, version)
  SELECT repo, nextval('learning_scope_version') FROM (SELECT DISTINCT repo FROM learnings) r;

-- What a listing or search shows of a learning: its row, the outcome of the item it was
-- last given to, and how many items it was given to (and how many of those completed).
CREATE VIEW learnings_shown AS
SELECT l.id, l.repo, l.scope, l.content, l.source_worker_id, l.source_work_item_id,
       l.use_count, l.save_count, l.created_at, l.last_saved_at, l.updated_at, l.obsolete_at,
       l.last_given_at, l.last_given_work_item_id, w.status AS last_given_status,
       coalesce(d.given, 0) AS given_count, coalesce(d.completed, 0) AS completed_count
  FROM learnings l
  LEFT JOIN work_items w ON w.id = l.last_given_work_item_id
  LEFT JOIN LATERAL (
    SELECT count(*) AS given, count(*) FILTER (WHERE wi.status = 'completed') AS completed
      FROM learning_deliveries ld JOIN work_items wi ON wi.id = ld.work_item_id
     WHERE ld.learning_id = l.id
  ) d ON true;
