"""Slack's escaping decoded once into the person's words (bot/slack/text_in.py)."""

from __future__ import annotations

import pytest

from bot.slack.text_in import form_value, person_words, spoken_text


@pytest.mark.parametrize(
    ("sent", "typed"),
    [
        ("a &amp;&amp; b &gt; out 2&gt;&amp;1 &lt;in", "a && b > out 2>&1 <in"),
        ("&amp;lt; stays typed", "&lt; stays typed"),  # decoded once, never twice
        ("python <http://train.py|train.py>", "python train.py"),  # Slack's link of typed text
        ("<https://example.org/x?a=1&amp;b=2>", "https://example.org/x?a=1&b=2"),
        ("<https://evil.example/sso|Slack SSO>", "https://evil.example/sso"),  # the target, not the label
        ("<mailto:bob@example.org|bob@example.org>", "bob@example.org"),
        ("<@U0BOB|bob> <@U0CAROL>", "@bob @U0CAROL"),
        ("<#C0GPU|gpu> <#C0X>", "#gpu #C0X"),
        ("<!channel> <!here> <!everyone>", "@channel @here @everyone"),
        ("<!subteam^S0ML|@ml-team> <!subteam^S0X>", "@ml-team @S0X"),
        ("<!date^1700000000^{date_short}|Nov 14>", "Nov 14"),
    ],
)
def test_person_words(sent: str, typed: str) -> None:
    assert person_words(sent) == typed


def test_a_mention_of_the_bot_is_dropped_and_the_rest_decoded() -> None:
    event = {"text": "<@U0000BOT>  status   &lt;!channel&gt; <!here>"}
    assert spoken_text(event) == "status <!channel> @here"


def test_the_lines_of_a_message_stay_lines() -> None:
    event = {"text": "<@U0000BOT> 1 gpu, run:\npython prep.py  --fast\n\n  python train.py "}
    assert spoken_text(event) == "1 gpu, run:\npython prep.py --fast\n\npython train.py"


def test_form_values_are_taken_as_typed() -> None:
    assert form_value("  python a.py &amp;&amp; b  ") == "python a.py &amp;&amp; b"
    assert form_value("   ") is None
