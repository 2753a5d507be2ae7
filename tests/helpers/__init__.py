"""Data builders shared by several test modules (no test module imports another)."""
