-- 005: GitHub intake.
-- * webhook_deliveries: every X-GitHub-Delivery id accepted, so a redelivery (GitHub keeps
--   the id) or a replay is answered without acting twice. Pruned after 30 days, well past
--   GitHub's redelivery window (3 days, 7 on GHES).
-- * intake_requests: issues a webhook asked intake to look at now. The intake loop (in
--   `factory up`, or `factory intake` over the API) takes them, so one loop does all
--   GitHub work serially and the webhook answers at once. One pending row per issue.

CREATE TABLE webhook_deliveries (
  delivery_id  TEXT PRIMARY KEY,
  event        TEXT NOT NULL,
  action       TEXT,
  repo         TEXT,
  received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);

CREATE TABLE intake_requests (
  id           BIGSERIAL PRIMARY KEY,
  repo         TEXT NOT NULL,
  issue_number INT NOT NULL,
  reason       TEXT NOT NULL,
  delivery_id  TEXT,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),

  CONSTRAINT intake_request_issue_positive CHECK (issue_number > 0)
);
CREATE UNIQUE INDEX intake_requests_issue ON intake_requests (lower(repo), issue_number);
