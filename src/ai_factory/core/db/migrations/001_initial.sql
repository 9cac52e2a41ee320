-- 001: the initial schema: work items and their events, workers, learnings, worker
-- metrics, file locks, iterations. Beyond plain tables:
-- * work_items: attempts/max_attempts, a lease_token that changes at every claim,
--   updated_at, repo as TEXT, an active-item idempotency index, a claim index.
-- * work_item_events: the audit trail, written by a trigger on every status change
--   (so no code path can forget it) and announced with NOTIFY factory_events.
-- * pgvector is created when the server has it; without it everything else works
--   and learnings search falls back to full-text.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
    CREATE EXTENSION IF NOT EXISTS vector;
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'pgvector available but not creatable by this role; using full-text search only';
END
$$;

CREATE TABLE work_items (
  id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  source        TEXT NOT NULL,
  source_id     TEXT NOT NULL,
  source_url    TEXT NOT NULL DEFAULT '',
  repo          TEXT NOT NULL,
  base_branch   TEXT NOT NULL DEFAULT 'main',
  spec          TEXT NOT NULL,
  priority      TEXT NOT NULL DEFAULT 'medium',
  priority_rank SMALLINT GENERATED ALWAYS AS (
                  CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1
                                WHEN 'medium' THEN 2 ELSE 3 END) STORED,
  status        TEXT NOT NULL DEFAULT 'queued',
  status_reason TEXT,
  worker_id     UUID,
  lease_token   UUID,
  attempts      INT NOT NULL DEFAULT 0,
  max_attempts  INT NOT NULL DEFAULT 3,
  available_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  pr_url        TEXT,
  error         TEXT,
  iterations    INT NOT NULL DEFAULT 0,
  tokens        BIGINT NOT NULL DEFAULT 0,
  cost_usd      NUMERIC(14, 6) NOT NULL DEFAULT 0,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  started_at    TIMESTAMPTZ,
  completed_at  TIMESTAMPTZ,
  updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),

  CONSTRAINT valid_source CHECK (source IN ('github', 'api')),
  CONSTRAINT valid_priority CHECK (priority IN ('critical', 'high', 'medium', 'low')),
  CONSTRAINT valid_status CHECK (status IN
    ('queued', 'assigned', 'running', 'stuck', 'completed', 'failed', 'cancelled')),
  CONSTRAINT valid_attempts CHECK (attempts >= 0 AND max_attempts >= 1),
  CONSTRAINT repo_not_empty CHECK (repo <> ''),
  CONSTRAINT spec_not_empty CHECK (spec <> '')
);

-- At most one active item per source item: a second submit of the same issue finds it.
CREATE UNIQUE INDEX work_items_active_source ON work_items (source, repo, source_id)
  WHERE status IN ('queued', 'assigned', 'running', 'stuck');
-- The claim walks this index in priority, then FIFO, order.
CREATE INDEX work_items_claim ON work_items (priority_rank, created_at, id)
  WHERE status = 'queued';
CREATE INDEX work_items_status ON work_items (status);
CREATE INDEX work_items_created ON work_items (created_at);
CREATE INDEX work_items_repo ON work_items (repo);

CREATE TABLE work_item_events (
  id            BIGSERIAL PRIMARY KEY,
  work_item_id  UUID NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
  kind          TEXT NOT NULL,
  from_status   TEXT,
  to_status     TEXT,
  reason        TEXT,
  data          JSONB NOT NULL DEFAULT '{}'::jsonb,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX work_item_events_item ON work_item_events (work_item_id, id);
CREATE INDEX work_item_events_created ON work_item_events (created_at);

CREATE FUNCTION record_work_item_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO work_item_events (work_item_id, kind, from_status, to_status, reason, data)
  VALUES (NEW.id, 'status',
          CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
          NEW.status, NEW.status_reason,
          jsonb_build_object('attempts', NEW.attempts, 'workerId', NEW.worker_id));
  RETURN NEW;
END
$$;

CREATE TRIGGER work_items_status_inserted AFTER INSERT ON work_items
  FOR EACH ROW EXECUTE FUNCTION record_work_item_status();
CREATE TRIGGER work_items_status_changed AFTER UPDATE OF status ON work_items
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION record_work_item_status();

CREATE FUNCTION notify_work_item_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('factory_events', json_build_object(
    'id', NEW.id, 'workItemId', NEW.work_item_id, 'kind', NEW.kind,
    'fromStatus', NEW.from_status, 'toStatus', NEW.to_status)::text);
  RETURN NEW;
END
$$;

CREATE TRIGGER work_item_events_notify AFTER INSERT ON work_item_events
  FOR EACH ROW EXECUTE FUNCTION notify_work_item_event();

CREATE TABLE workers (
  id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  container_id      TEXT NOT NULL DEFAULT '',
  work_item_id      UUID REFERENCES work_items (id) ON DELETE SET NULL,
  lease_token       UUID,
  token_hash        TEXT NOT NULL,
  status            TEXT NOT NULL DEFAULT 'idle',
  phase             TEXT,
  current_iteration INT NOT NULL DEFAULT 0,
  total_tokens      BIGINT NOT NULL DEFAULT 0,
  cost_usd          NUMERIC(14, 6) NOT NULL DEFAULT 0,
  spawner           TEXT NOT NULL DEFAULT 'external',
  host              TEXT NOT NULL DEFAULT '',
  last_heartbeat    TIMESTAMPTZ NOT NULL DEFAULT now(),
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  finished_at       TIMESTAMPTZ,

  CONSTRAINT valid_worker_status CHECK (status IN ('idle', 'busy', 'stuck', 'dead', 'done'))
);
CREATE INDEX workers_status ON workers (status);
CREATE INDEX workers_item ON workers (work_item_id);

CREATE TABLE learnings (
  id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  repo                 TEXT NOT NULL,
  content              TEXT NOT NULL,
  source_worker_id     UUID,
  source_work_item_id  UUID REFERENCES work_items (id) ON DELETE SET NULL,
  use_count            INT NOT NULL DEFAULT 0,
  created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX learnings_repo ON learnings (repo);

CREATE TABLE worker_metrics (
  id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  worker_id         UUID NOT NULL,
  work_item_id      UUID REFERENCES work_items (id) ON DELETE CASCADE,
  iterations        INT NOT NULL,
  tokens_used       BIGINT NOT NULL,
  cost_usd          NUMERIC(14, 6) NOT NULL DEFAULT 0,
  duration_seconds  INT NOT NULL,
  files_changed     INT NOT NULL,
  status            TEXT NOT NULL,
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),

  CONSTRAINT valid_metric_status CHECK (status IN ('completed', 'failed', 'stuck'))
);
CREATE INDEX worker_metrics_created ON worker_metrics (created_at);

CREATE TABLE file_locks (
  repo         TEXT NOT NULL,
  file_path    TEXT NOT NULL,
  worker_id    UUID NOT NULL REFERENCES workers (id) ON DELETE CASCADE,
  acquired_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at   TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (repo, file_path)
);
CREATE INDEX file_locks_worker ON file_locks (worker_id);

-- One row per finished agent iteration: the daily budget and cost limits count these,
-- so a restart of the orchestrator does not reset them.
CREATE TABLE iterations (
  id             BIGSERIAL PRIMARY KEY,
  worker_id      UUID NOT NULL,
  work_item_id   UUID REFERENCES work_items (id) ON DELETE CASCADE,
  number         INT NOT NULL,
  input_tokens   BIGINT NOT NULL DEFAULT 0,
  output_tokens  BIGINT NOT NULL DEFAULT 0,
  cache_tokens   BIGINT NOT NULL DEFAULT 0,
  cost_usd       NUMERIC(14, 6) NOT NULL DEFAULT 0,
  duration_ms    BIGINT NOT NULL DEFAULT 0,
  outcome        TEXT NOT NULL DEFAULT 'ok',
  created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (worker_id, number)
);
CREATE INDEX iterations_created ON iterations (created_at);
