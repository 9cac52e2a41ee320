-- 009: follow-up work on the factory's own pull requests.
-- A follow-up (review feedback, a failing check, a merge conflict) is a work item of its
-- own, linked to the item whose pull request it continues (parent_id), working on that
-- pull request's existing branch (branch, pr_number). `context` holds what the worker
-- needs beyond the spec: the feedback it answers (GitHub ids, to reply in each thread),
-- the pull request head it starts from, the failing check. One active follow-up per pull
-- request comes from the existing one-active-item rule (source_id 'pr-<number>').
ALTER TABLE work_items
  ADD COLUMN parent_id UUID REFERENCES work_items (id) ON DELETE SET NULL,
  ADD COLUMN kind      TEXT NOT NULL DEFAULT 'work',
  ADD COLUMN branch    TEXT,
  ADD COLUMN pr_number INT,
  ADD COLUMN context   JSONB NOT NULL DEFAULT '{}'::jsonb,
  ADD CONSTRAINT valid_kind CHECK (kind IN ('work', 'review', 'ci_fix', 'conflict')),
  ADD CONSTRAINT followup_has_parent CHECK (kind = 'work' OR parent_id IS NOT NULL);

CREATE INDEX work_items_parent ON work_items (parent_id) WHERE parent_id IS NOT NULL;
