"""`concierge doctor`: checks each configured dependency and says, per line, what it checked,
✓ or ✗, and the fix.

Each dependency has its own module with one function that returns `Check`s; the asking is done by
the clients the bot itself uses (the store, backends/slurm and backends/k8s health probes, the LLM
client, the Slack Web API client), so doctor fails exactly where the bot would. Nothing is
submitted, migrated or left written. `run.run_checks` picks what is configured.
"""
