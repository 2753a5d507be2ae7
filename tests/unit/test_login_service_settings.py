"""The login service's URL: what each credential must name (bot/remote/settings.py)."""

from __future__ import annotations

import pytest

from backends.errors import ConfigurationError
from bot.remote.settings import LoginServiceSettings


def test_the_url_defaults_to_the_address_it_listens_on() -> None:
    assert LoginServiceSettings(host="10.0.0.5", port=0).public_url(43210) == "http://10.0.0.5:43210"
    named = LoginServiceSettings(host="0.0.0.0", url="https://concierge.example.org/")
    assert named.public_url(8790) == "https://concierge.example.org"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_listening_everywhere_needs_the_url_the_login_nodes_use(host: str) -> None:
    with pytest.raises(ConfigurationError, match="CONCIERGE_LOGIN_SERVICE__URL"):
        LoginServiceSettings(host=host)


def test_the_url_is_http() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        LoginServiceSettings(url="ftp://concierge")
