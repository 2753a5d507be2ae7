"""The Kubernetes backend: GPU requests as Deployments and Jobs, made as the person who asked.

Modules, each small: `settings`; `naming` (DNS-1123 names from any text); `objects` (the API's
JSON, decoded by msgspec); `products` (GPU product names); `capacity` (free GPUs per node and
pool) and `facts` (what the nodes offer); `placement` (which GPU resource and node affinity);
`templates` (vLLM / TGI) and `manifests` (the Deployment, Service or Job); `pending` (the
scheduler's and kubelet's words, parsed), `asks`, `alternatives` and `explanations` (why it waits,
what would start sooner); `workloads` (our workloads and their states); `api_errors`,
`connection` (clients per person, impersonation) and `cluster` (the wire); `backend` on top;
`service_endpoints` (a Service's ready pods as scrape URLs, for dcgm-exporter discovery).
Only `api_errors`, `connection` and `cluster` import the `kubernetes` client, and importing this
package imports none of its modules: every CLI command reads `settings`, and the client costs
~0.2 s to import, so only code that talks to a cluster pays for it.
"""
