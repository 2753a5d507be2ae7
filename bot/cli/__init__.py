"""The command-line door: `concierge …`."""

import os

# Pydantic looks for plugins among every installed package's entry points the first time a model
# is built (~50 ms of each command's start); we use none. A site that does can set the variable.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
