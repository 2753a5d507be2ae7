"""Slack's text, decoded once into the person's words, at the door: commands, messages, form fields.

Slack escapes `&`, `<` and `>` in the text of messages and slash commands (`&amp;`, `&lt;`,
`&gt;`), and writes mentions and links as control sequences in angle brackets. Left as they come,
`a && b` reaches the sbatch script as `a &amp;&amp; b`. So the text is decoded here, once, by
`person_words` (slash commands, DMs and @mentions) and `form_value` (modal inputs); the grammar,
the model, the store and the script only ever see what the person meant. Nothing else decodes:
a second pass would turn a typed `&amp;lt;` into `<`.

How each control sequence becomes the person's words:
- `<@U123|alice>` → `@alice`, `<@U123>` → `@U123`; `<#C123|gpu>` → `#gpu`, `<#C123>` → `#C123`.
- `<!here>`, `<!channel>`, `<!everyone>` → `@here`, `@channel`, `@everyone`; `<!subteam^S1|@ml>` →
  `@ml`; `<!date^…|fallback>` → the fallback: what a reader saw, never the control sequence.
- A link: Slack detects URLs in what was typed and writes `<url|as typed>`, e.g.
  `<http://train.py|train.py>` for `python train.py` (`.py` is a country's domain). When the label
  is the URL itself or the URL without its scheme, the label is what was typed. Otherwise (a link
  whose label says something else) the URL itself, so nothing hides behind a label; `<url>` is
  its URL.

Modal inputs (`plain_text_input` values in a `view_submission`) arrive exactly as typed, without
Slack's escaping (Block Kit's plain-text input element), so `form_value` decodes nothing.
"""

from __future__ import annotations

import re
from typing import Any

# One pass over both kinds of escape, so nothing decoded is decoded again.
_ESCAPE = re.compile(r"<([^<>]*)>|&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_ENTITY = re.compile(r"&(amp|lt|gt);")
# Mentions of people, the bot's own among them: dropped from a message addressed to the bot.
_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^<>]*)?>")


def person_words(slack_text: str) -> str:
    """The text of a slash command or a message, as the person typed it."""
    return _ESCAPE.sub(_decoded, slack_text)


def spoken_text(event: dict[str, Any]) -> str:
    """A DM's or @mention's words, without the @mentions (of the bot), spaces collapsed within each
    line; the line breaks stay, since a command of several lines is one line per step."""
    words = person_words(_USER_MENTION.sub(" ", str(event.get("text") or "")))
    return "\n".join(" ".join(line.split()) for line in words.splitlines()).strip()


def form_value(value: str) -> str | None:
    """A modal input's value (plain text, as typed), stripped; None when nothing was entered."""
    return value.strip() or None


def _decoded(match: re.Match[str]) -> str:
    entity = match.group(2)
    if entity is not None:
        return _ENTITIES[entity]
    return _control_sequence(match.group(1))


def _control_sequence(inside: str) -> str:
    target, bar, label = inside.partition("|")
    target, label = _unescaped(target), _unescaped(label)
    if target.startswith("@") or target.startswith("#"):
        return f"{target[0]}{label.lstrip('@#')}" if bar and label else target
    if target.startswith("!date^"):
        return label  # what a reader of the message saw
    if target.startswith("!"):
        kind, _, detail = target[1:].partition("^")  # `!here`, or `!subteam^S123`
        return f"@{label.lstrip('@')}" if bar and label else f"@{detail if kind == 'subteam' else kind}"
    if bar and label and label in (target, _without_scheme(target)):
        return label
    return target


def _without_scheme(url: str) -> str:
    return url.split(":", 1)[1].removeprefix("//") if ":" in url else url


def _unescaped(text: str) -> str:
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)
