"""The login-node service's settings (`login_service` in the main settings; CONCIERGE_LOGIN_SERVICE__…).

`serve` opens the listener when the section is given (any CONCIERGE_LOGIN_SERVICE__… value, or a
`login_service:` key in the file named by CONCIERGE_CONFIG). `url` is what the site file's
`service: {url: …}` says on the login nodes: each credential's payload names the URL it was made
for, and the service accepts only its own (bot/remote/protocol.py); by default the address it
listens on. Behind a proxy or a DNS name, set it to the name the login nodes use.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backends.errors import ConfigurationError

_EVERY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 - names no URL a login node could use


class LoginServiceSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8790, ge=0, le=65535)  # 0: any free port (tests)
    url: str | None = None  # the URL the login nodes use; default http://host:port
    unmunge: str = "unmunge"  # the binary that asks munged to decode a credential
    munge_socket: str | None = None  # munged's socket, when not the default /run/munge/munge.socket.2
    max_body_bytes: int = Field(default=64 * 1024, gt=0)  # a request's JSON is a few hundred bytes
    workers: int = Field(default=8, ge=1)  # requests worked on at once (each mostly waits on the cluster)
    unmunge_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, e.g. http://login-svc:8790 (got {url!r})")
        return url.rstrip("/") if url else url

    @model_validator(mode="after")
    def _url_known(self) -> Self:
        if self.url is None and self.host in _EVERY_ADDRESS:
            raise ConfigurationError(
                f"the login service listens on every address ({self.host or 'all'}), so it cannot tell "
                "which URL the login nodes' credentials must name: set CONCIERGE_LOGIN_SERVICE__URL to the "
                "site file's `service: {url: …}`, e.g. http://concierge.example.org:8790"
            )
        return self

    def public_url(self, bound_port: int | None = None) -> str:
        """The URL credentials must name: `url`, else this listener's own address."""
        return self.url or f"http://{self.host}:{bound_port if bound_port is not None else self.port}"
