"""`load_policy`: the shipped default, a site file layered over it, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from backends.errors import ConfigurationError
from backends.types import Identity
from policies import DEFAULT_POLICY_FILE, PolicySettings, load_policy


def _shipped() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    return loaded


def _site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_the_shipped_default_is_what_the_yaml_says() -> None:
    loaded = load_policy(None)
    shipped = _shipped()
    for key in ("max_gpus_per_job", "max_gpus_per_user", "max_time_minutes", "default_time_minutes"):
        assert getattr(loaded, key) == shipped[key]
    assert loaded.approval_gpu_hours == shipped["approval_gpu_hours"]
    assert loaded.required_fields.batch == tuple(shipped["required_fields"]["batch"])
    assert loaded.overrides.users == {}


def test_the_shipped_default_is_sensible() -> None:
    loaded = load_policy(None)
    assert loaded.max_gpus_per_job is not None and loaded.max_gpus_per_user is not None
    assert 1 <= loaded.max_gpus_per_job <= loaded.max_gpus_per_user
    assert loaded.max_time_minutes is not None
    assert loaded.default_time_minutes <= loaded.max_time_minutes
    assert "command" in loaded.required_fields.batch


def test_a_site_file_changes_only_the_keys_it_names(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        """
max_gpus_per_job: 8
allowed_partitions: [gpu, short]
required_fields:
  service: [image]
overrides:
  users:
    alice: {max_gpus_per_job: 16}
""",
    )
    loaded = load_policy(site)
    shipped = _shipped()
    assert loaded.max_gpus_per_job == 8
    assert loaded.allowed_partitions == ("gpu", "short")
    assert loaded.max_gpus_per_user == shipped["max_gpus_per_user"]
    assert loaded.required_fields.service == ("image",)
    assert loaded.required_fields.batch == tuple(shipped["required_fields"]["batch"])  # merged, not replaced
    assert loaded.limits_for(Identity(requester="alice")).max_gpus_per_job == 16
    assert loaded.limits_for(Identity(requester="bob")).max_gpus_per_job == 8


def test_null_in_a_site_file_lifts_a_limit(tmp_path: Path) -> None:
    loaded = load_policy(_site(tmp_path, "max_gpus_per_user: null\napproval_gpu_hours: null\n"))
    assert loaded.max_gpus_per_user is None and loaded.approval_gpu_hours is None


def test_an_empty_site_file_is_the_default(tmp_path: Path) -> None:
    assert load_policy(_site(tmp_path, "# nothing changed yet\n")) == load_policy(None)


def test_an_unknown_key_names_the_file_the_key_and_the_known_keys(tmp_path: Path) -> None:
    site = _site(tmp_path, "max_gpu_per_job: 8\n")
    with pytest.raises(ConfigurationError) as caught:
        load_policy(site)
    message = caught.value.message
    assert str(site) in message
    assert "unknown key 'max_gpu_per_job'" in message
    assert "max_gpus_per_job" in message


def test_an_unknown_key_in_an_override_names_its_path(tmp_path: Path) -> None:
    site = _site(tmp_path, "overrides:\n  users:\n    alice: {max_gpu: 8}\n")
    with pytest.raises(ConfigurationError, match=r"unknown key 'overrides\.users\.alice\.max_gpu'") as caught:
        load_policy(site)
    assert "max_gpus_per_job" in caught.value.message


def test_an_unknown_required_field_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="commmand is not a request field"):
        load_policy(_site(tmp_path, "required_fields: {batch: [commmand]}\n"))


def test_a_bad_value_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match="max_gpus_per_job: Input should be greater than or equal to 0"
    ):
        load_policy(_site(tmp_path, "max_gpus_per_job: -1\n"))
    with pytest.raises(ConfigurationError, match="max_time_minutes: Input should be a valid integer"):
        load_policy(_site(tmp_path, "max_time_minutes: two days\n"))


def test_a_default_time_longer_than_the_maximum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"default_time_minutes \(600\) is longer than max_time_minutes \(60\)"
    ):
        load_policy(_site(tmp_path, "max_time_minutes: 60\ndefault_time_minutes: 600\n"))


def test_an_override_that_makes_limits_inconsistent_is_refused(tmp_path: Path) -> None:
    site = _site(tmp_path, "overrides:\n  groups:\n    interns: {max_time_minutes: 30}\n")
    with pytest.raises(ConfigurationError, match=r"overrides\.groups\.interns: .*default_time_minutes"):
        load_policy(site)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    site = _site(tmp_path, "max_gpus_per_job: [8\n")
    with pytest.raises(ConfigurationError, match=f"the policy file {site} is not valid YAML"):
        load_policy(site)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="must hold a mapping of keys"):
        load_policy(_site(tmp_path, "- max_gpus_per_job\n"))


def test_a_missing_file_says_which_and_where_it_was_configured(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(
        ConfigurationError, match=f"cannot read the policy file {missing}.*CONCIERGE_POLICY_FILE"
    ):
        load_policy(missing)


def test_settings_are_frozen() -> None:
    loaded = load_policy(None)
    with pytest.raises(ValueError):
        loaded.max_gpus_per_job = 100
    assert isinstance(loaded, PolicySettings)


def test_routing_sends_services_to_kubernetes_by_default_and_a_site_can_change_it(tmp_path: Path) -> None:
    shipped = load_policy(None)
    assert shipped.routing.target_for("service") == "k8s"
    assert shipped.routing.target_for("batch") == shipped.routing.target_for(None) == "slurm"
    site = tmp_path / "site.yaml"
    site.write_text("routing:\n  batch: k8s\n")
    assert load_policy(site).routing.target_for(None) == "k8s"
    assert load_policy(site).routing.target_for("service") == "k8s"
