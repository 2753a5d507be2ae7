"""The bridge between the engine and the clusters: shared types, the Backend protocol, adapters."""
