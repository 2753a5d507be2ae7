"""Fakes every test shares: one cluster backend, one Slack app builder; no test module imports another."""
