"""GitHub intake: labelled issues become specs and work items; results go back as comments."""
