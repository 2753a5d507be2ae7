"""Login nodes use the service: the CLI's person-facing commands over HTTP, the caller proven by MUNGE.

`protocol` (what a credential binds) and `munge` (the two binaries) are shared by both ends;
`client` is the CLI's side (stdlib only: it loads on a login node with no database or cluster
client), `service` and `handlers` the service's (one engine, the one `serve` runs).
"""
