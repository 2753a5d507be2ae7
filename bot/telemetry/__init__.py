"""GPU use over time: samples rolled up in the store, digests, their schedule and idle-GPU nudges."""
