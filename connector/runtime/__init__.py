"""The durable runtime: the one run path that `connector run`, `runs resume|retry|replay` and
`connector serve` share (prepare a recipe, run its plan for an event on DBOS, record it)."""
