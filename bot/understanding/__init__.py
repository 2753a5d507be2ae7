"""Deterministic understanding: a person's words become an `Intent` without a language model.

The grammar is the fast path (microseconds, no network); the LLM will sit beside it for chat and
take over only when the grammar's confidence is low. Entry point: `grammar.understand`.
"""
