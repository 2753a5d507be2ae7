"""Kubernetes backend (GPU Deployments and Jobs). Arrives with the Kubernetes issue; nothing here yet."""
