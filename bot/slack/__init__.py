"""The Slack door: bolt-python translating slash commands and button clicks into engine calls.

Only this package imports `slack_bolt`/`slack_sdk` (DESIGN.md: each client stays in one room);
the engine, the store and the policies never see a Slack object.
"""
