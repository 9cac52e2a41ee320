"""GitHub intake: labelled issues in, specs to the queue, comments and labels back.

Modules: `github` (`GitHubIntakeClient`, on githubkit: rate limits, write
spacing, errors) with `write_pacing`; `errors` (what the core error tree has no
word for); `models` (issues and their edits, repositories, label events);
`sanitize` (issue text is data); `spec_gen` (issue to SPEC.md, Claude Code or the
Anthropic API); `labels` (label names, priority); `feedback` (comments and their
markers); `trust` (who may send an issue, whose edits count); `processor` (one
issue: trust gate, spec, submit, report, edits after pickup); `service` (the poll
loop); `submitter` (queue directly or over the API); `webhook` and `api` (the
webhook route, signature, replay protection); `store` (intake's tables);
`runner` (composition for `factory up` and `factory intake`).
"""
