"""Events API listeners: DMs and @mentions (conversation.py) and the App Home tab (home.py).

Bolt acknowledges an event as soon as `ack()` runs; the answer is a lazy listener, so a retry
(`X-Slack-Retry-Num`) is only sent by Slack when we were really down, and the event-id claim in
conversation.py makes that retry harmless. Channel messages other than DMs are acknowledged and
dropped (`message.channels` may be subscribed for mentions; `app_mention` answers those).
"""

from __future__ import annotations

from slack_bolt import App

from bot.conversations import Conversations
from bot.engine import Concierge
from bot.slack.commands import GpuCommand, ResolveIdentity
from bot.slack.conversation import Conversation, ConversationListener
from bot.slack.home import HomeTab
from bot.slack.listeners import Background
from bot.store import Store


def register_events(
    app: App,
    concierge: Concierge,
    store: Store,
    command: GpuCommand,
    resolve_identity: ResolveIdentity,
    background: Background,
    conversations: Conversations | None = None,
) -> None:
    conversation = ConversationListener(
        Conversation(concierge, store, command, resolve_identity, conversations), store
    )
    home = HomeTab(concierge, resolve_identity)
    background.register(app.event("message"), conversation.direct_message)
    background.register(app.event("app_mention"), conversation.mention)
    background.register(app.event("app_home_opened"), home.opened)
