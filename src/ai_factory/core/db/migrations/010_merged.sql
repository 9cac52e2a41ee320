-- 010: when the factory's pull request was merged (intake sees it close merged), so that
-- the cost of a merged pull request (its item and every follow-up) can be reported.
ALTER TABLE work_items ADD COLUMN pr_merged_at TIMESTAMPTZ;
CREATE INDEX work_items_merged ON work_items (pr_merged_at) WHERE pr_merged_at IS NOT NULL;
