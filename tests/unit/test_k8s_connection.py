"""API clients: the bot's own, one per person with impersonation, loaded from a real kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes.client import ApiClient, Configuration

from backends.errors import ConfigurationError, PermissionDenied, RequestInvalid
from backends.k8s.connection import ApiClients, factory_from_settings, load_configuration, person_of
from backends.k8s.settings import K8sSettings
from backends.types import Identity

ALICE = Identity(requester="U-ALICE", k8s_user="alice", k8s_groups=("ml", "ml", "gpu-users"))
BOB = Identity(requester="U-BOB", k8s_user="bob")


def new_client() -> ApiClient:
    return ApiClient(Configuration(host="http://127.0.0.1:1"))


def test_a_person_is_a_user_and_their_groups_once_each() -> None:
    assert person_of(ALICE) == ("alice", ("ml", "gpu-users"))


def test_unmapped_and_superuser_identities_are_refused() -> None:
    with pytest.raises(RequestInvalid, match="no Kubernetes user is mapped for U-X"):
        person_of(Identity(requester="U-X"))
    with pytest.raises(PermissionDenied, match="never acts as one"):
        person_of(Identity(requester="U-X", k8s_user="system:admin"))
    with pytest.raises(PermissionDenied, match="never acts as one"):
        person_of(Identity(requester="U-X", k8s_user="system:node:gpu-1"))
    with pytest.raises(PermissionDenied, match="system:masters"):
        person_of(Identity(requester="U-X", k8s_user="mallory", k8s_groups=("system:masters",)))


def test_each_person_gets_their_own_impersonating_client_and_the_bot_none() -> None:
    clients = ApiClients(new_client)
    alice, user, groups = clients.person(ALICE)
    assert (user, groups) == ("alice", ("ml", "gpu-users"))
    assert alice.default_headers["Impersonate-User"] == "alice"
    assert "Impersonate-Group" not in alice.default_headers  # added per request, one line per group
    bob, _, _ = clients.person(BOB)
    assert bob is not alice and bob.default_headers["Impersonate-User"] == "bob"
    assert "Impersonate-User" not in clients.bot().default_headers
    assert clients.person(ALICE)[0] is alice


def test_the_cache_keeps_the_most_recent_people() -> None:
    clients = ApiClients(new_client, cache_size=1)
    alice, _, _ = clients.person(ALICE)
    clients.person(BOB)
    assert clients.person(ALICE)[0] is not alice


def test_a_factory_that_hands_out_one_client_twice_is_refused() -> None:
    shared = new_client()
    clients = ApiClients(lambda: shared)
    clients.bot()
    with pytest.raises(ConfigurationError, match="must return a new ApiClient on every call"):
        clients.person(ALICE)


def kubeconfig(path: Path, server: str, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": {"server": server}}],
        "users": [{"name": "bot", "user": {"token": token}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "bot"}}],
        "current-context": "lab",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_bots_connection_is_loaded_from_the_kubeconfig_in_settings(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "http://127.0.0.1:6443", "s3cret")
    configuration = load_configuration(K8sSettings(kubeconfig=path))
    assert configuration.host == "http://127.0.0.1:6443"
    assert configuration.auth_settings()["BearerToken"]["value"] == "Bearer s3cret"
    client = factory_from_settings(K8sSettings(kubeconfig=path))()
    assert client.configuration.host == "http://127.0.0.1:6443"


def test_a_missing_kubeconfig_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot load the Kubernetes configuration"):
        load_configuration(K8sSettings(kubeconfig=tmp_path / "absent"))
    with pytest.raises(ConfigurationError, match=r"k8s\.kubeconfig"):
        load_configuration(
            K8sSettings(kubeconfig=kubeconfig(tmp_path / "c", "http://x", "t"), context="nope")
        )
