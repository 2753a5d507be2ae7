"""slurmrestd's slurmdbd answers (captured on the local 22.05: /slurmdb/v0.0.38/qos and /associations)
rendered as assoc_mgr records: the same limits as the CLI driver reads, without the current use."""

from __future__ import annotations

import json
from pathlib import Path

from backends.slurm.limit_checks import Ask, limit_checks
from backends.slurm.limits import GpuTres, lacks_list_limits, parse_assoc_mgr
from backends.slurm.rest_limits import assoc_mgr_lines

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"
QOS = json.loads((FIXTURES / "rest-dbv0.0.38-qos.json").read_text())
ASSOCIATIONS = json.loads((FIXTURES / "rest-dbv0.0.38-associations.json").read_text())
MGR = parse_assoc_mgr(assoc_mgr_lines(QOS, ASSOCIATIONS, "alice"))


def test_the_definitions_read_as_from_assoc_mgr_without_usage() -> None:
    assert MGR.users == {"alice": (None, "concierge")}
    assert MGR.qos["gpu-group"].group == GpuTres(2, None)
    assert MGR.qos["gpu-per-user"].per_user == 1
    assert not lacks_list_limits(MGR, "gpu-per-user")  # known: no sacctmgr needed (nor possible)
    assert not lacks_list_limits(MGR, "normal")
    vision = next(a for a in MGR.assocs if a.account == "vision" and a.user is None)
    assert (vision.parent, vision.group) == ("root", GpuTres(1, None))
    assert {a.user for a in MGR.assocs} == {None, "alice"}  # bob's and dana's are left out


def test_checks_over_rest_match_the_cli_driver_s() -> None:
    over = limit_checks(Ask("alice", None, "gpu-per-user", "gpu", 2, 2), MGR)
    assert [(c.reason, c.limit, c.used, c.never_fits) for c in over] == [("QOSMaxGRESPerUser", 1, 0, True)]
    vision = limit_checks(Ask("alice", "vision", "normal", "gpu", 1, 1), MGR)
    assert [(c.reason, c.limit, c.used) for c in vision] == [("AssocGrpGRES", 1, 0)]
