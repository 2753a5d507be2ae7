"""A fake Slack for tests: the Web API and Socket Mode on 127.0.0.1, and Slack's inbound requests.

The bot under test keeps its real slack_sdk/Bolt stack; only the network peer is fake. See
web_api (outbound calls), socket_server (Socket Mode) and inbound (signed requests, payloads).
"""

from tests.slack_fake.inbound import (
    block_action_body,
    block_action_payload,
    signed_request,
    slash_command_body,
    slash_command_fields,
    socket_mode_envelope,
)
from tests.slack_fake.socket_server import FakeSocketModeServer
from tests.slack_fake.web_api import FakeSlack, FakeUser, RecordedCall, ResponseUrlPost

__all__ = [
    "FakeSlack",
    "FakeSocketModeServer",
    "FakeUser",
    "RecordedCall",
    "ResponseUrlPost",
    "block_action_body",
    "block_action_payload",
    "signed_request",
    "slash_command_body",
    "slash_command_fields",
    "socket_mode_envelope",
]
