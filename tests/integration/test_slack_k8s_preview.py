"""Slack's preview of a Kubernetes request: the summary line, the manifests as YAML, then the verdict.

The engine plans on the real Kubernetes backend against the API emulator; the preview goes through
the real Bolt app to the fake Slack Web API. The YAML in the message parses back to the objects the
backend made, so what Submit creates is what the person read.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
import yaml
from kubernetes.client import ApiClient

from backends.k8s.backend import KubernetesBackend
from backends.k8s.settings import K8sSettings
from bot.engine import Concierge
from bot.slack.blocks import SUBMIT_ACTION
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import ALICE, Door, buttons, slack_app
from tests.k8s_emulator import BOT_USER, KubeEmulator
from tests.slack_fake import FakeSlack

MISTRAL = "mistralai/Mistral-7B-Instruct-v0.3"


@pytest.fixture
def k8s_door(store: Store, fake: FakeSlack) -> Iterator[Door]:
    with KubeEmulator() as kube:
        kube.add_token("bot-token", BOT_USER)
        kube.allow_bot()
        kube.add_namespace("research")
        kube.allow_edit("alice", "research")
        kube.add_node("gpu-1", gpu_product="NVIDIA-A100-SXM4-80GB", gpus=4, gpu_memory_mib=81920)
        backend = KubernetesBackend(
            K8sSettings(), api_client_factory=lambda: ApiClient(kube.client_configuration("bot-token"))
        )
        store.map_identity(ALICE)
        concierge = Concierge(store, {"k8s": backend}, understand, load_policy(None))
        yield Door(slack_app(store, fake, concierge), fake, FakeBackend(), store)
        backend.close()


def test_the_preview_shows_the_manifests_as_yaml_between_summary_and_verdict(k8s_door: Door) -> None:
    response, url = k8s_door.command(f"serve {MISTRAL} on one a100 in namespace research with port 8000")
    assert response.status == 200
    (preview,) = k8s_door.answers_to(url)
    texts = [block["text"]["text"] for block in preview["blocks"] if block.get("type") == "section"]
    verdict = next(i for i, text in enumerate(texts) if text.startswith("*Policy:*"))
    summary, manifests = texts[0], texts[1:verdict]
    assert summary.startswith("*1 × A100") and summary.endswith(f"serving {MISTRAL}, as alice*")
    # The manifests are longer than one section holds: every section shows its part, none is cut.
    assert len(manifests) > 1 and manifests[0].startswith("*Kubernetes manifests*\n")
    pieces = [re.fullmatch(r"(?:\*Kubernetes manifests\*\n)?```(.*)```", m, re.DOTALL) for m in manifests]
    assert all(pieces), manifests
    shown = "\n".join(html.unescape(piece.group(1)) for piece in pieces if piece)
    objects = list(yaml.safe_load_all(shown))
    assert [o["kind"] for o in objects] == ["Deployment", "Service"]
    assert all(o["metadata"]["namespace"] == "research" for o in objects)
    assert texts[verdict].startswith("*Policy:* :white_check_mark: allowed")
    assert buttons(preview, SUBMIT_ACTION)
