"""GPU limits of QOS and associations, read from ONE `scontrol -o show assoc_mgr` where Slurm keeps them.

The controller's association manager holds every limit and its current use; with `-o` each record
is one line (src/scontrol/info_assoc_mgr.c, 22.05):
  UserName=alice(1001) DefAccount=physics DefWckey= AdminLevel=None
  ClusterName=c Account=physics UserName= Partition= Priority=0 ID=2 … ParentAccount=root(1) …
      GrpTRES=cpu=N(2),…,gres/gpu=1(1) … MaxTRESPJ=gres/gpu=4 MaxTRESPN= …
  QOS=team(2) UsageRaw=0.000000 … GrpTRES=…,gres/gpu=2(2) … MaxTRESPJ= MaxTRESPN= …
      Account Limits= physics={MaxJobsPA=N(2) … MaxTRESPA=…,gres/gpu=N(2)}
      User Limits= 1001={MaxJobsPU=N(2) … MaxTRESPU=…,gres/gpu=1(1)}
A value is `LIMIT(USAGE)` where Slurm prints the use, `LIMIT` otherwise, `N` for no limit.
A QOS's per-user and per-account limits are printed only inside those lists, one entry per user
(by uid) or account that has jobs in the QOS ("User Limits=No Users" when none): the limit is the
same in every entry, so any entry gives it.
With `users=U` the controller keeps U's associations and every account-level one (their parents
included, so a parent account's limit is seen too); other users' associations are left out.
Without slurmdbd there are no records ("No QOS currently cached in Slurm."): nothing is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

_FIELD = re.compile(r"(?:^|\s)(?P<key>[A-Za-z/]+)=(?P<value>[^\s{]*)")
_GPU = re.compile(r"(?:^|,)gres/gpu=(?P<limit>N|\d+)(?:\((?P<used>\d+)\))?(?:,|$)")
_NAME_ID = re.compile(r"^(?P<name>[^()]*)(?:\((?P<id>\d+)\))?$")
_ENTRY = re.compile(r"(?P<key>\S+)=\{(?P<body>[^}]*)\}")


@dataclass(frozen=True)
class GpuTres:
    """A GPU limit (None: none set) and the GPUs counted against it now (None: not printed)."""

    limit: int | None = None
    used: int | None = None


@dataclass(frozen=True)
class AssocRecord:
    account: str
    user: str | None  # None: the account's own association (its limit covers all its users)
    partition: str | None
    parent: str | None
    group: GpuTres = GpuTres()
    per_job: int | None = None
    per_node: int | None = None


@dataclass(frozen=True)
class QosRecord:
    name: str
    group: GpuTres = GpuTres()
    per_job: int | None = None
    per_node: int | None = None
    per_user: int | None = None
    used_by_uid: Mapping[int, int] = field(default_factory=dict)
    per_account: int | None = None
    used_by_account: Mapping[str, int] = field(default_factory=dict)
    listed_users: bool = False  # its User Limits list had an entry, so per_user is known (None: none)
    listed_accounts: bool = False


@dataclass(frozen=True)
class AssocMgr:
    """What the association manager said: empty when Slurm runs without accounting."""

    # name → uid (None over slurmrestd, which does not print it), default account
    users: Mapping[str, tuple[int | None, str | None]] = field(default_factory=dict)
    assocs: tuple[AssocRecord, ...] = ()
    qos: Mapping[str, QosRecord] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.assocs and not self.qos

    def uid_of(self, user: str) -> int | None:
        known = self.users.get(user)
        return known[0] if known else None

    def default_account(self, user: str) -> str | None:
        known = self.users.get(user)
        return known[1] if known else None

    def account_chain(self, account: str) -> list[AssocRecord]:
        """The account's own association and its parents', nearest first (root last)."""
        by_account = {a.account: a for a in self.assocs if a.user is None and a.partition is None}
        chain: list[AssocRecord] = []
        current: str | None = account
        while current and current in by_account and len(chain) < 64:
            record = by_account[current]
            chain.append(record)
            current = record.parent
        return chain

    def user_assoc(self, user: str, account: str, partition: str | None) -> AssocRecord | None:
        """The person's association in `account`: the one for `partition` if any, else the plain one."""
        mine = [a for a in self.assocs if a.user == user and a.account == account]
        for record in mine:
            if partition and record.partition == partition:
                return record
        return next((record for record in mine if record.partition is None), None)


def _gpu(value: str, *, with_usage: bool) -> GpuTres:
    match = _GPU.search(value)
    if match is None:
        return GpuTres()
    limit = None if match["limit"] == "N" else int(match["limit"])
    used = int(match["used"]) if with_usage and match["used"] is not None else None
    return GpuTres(limit, used)


def _fields(text: str) -> dict[str, str]:
    return {m["key"]: m["value"] for m in _FIELD.finditer(text)}


def _name_and_id(value: str) -> tuple[str, int | None]:
    match = _NAME_ID.match(value)
    if match is None:
        return value, None
    return match["name"], int(match["id"]) if match["id"] else None


def _qos_record(line: str) -> QosRecord:
    head, _, lists = line.partition(" Account Limits=")
    accounts_part, _, users_part = lists.partition(" User Limits=")
    top = _fields(head)
    name, _ = _name_and_id(top.get("QOS", ""))
    per_user: int | None = None
    used_by_uid: dict[int, int] = {}
    user_entries = list(_ENTRY.finditer(users_part))
    account_entries = list(_ENTRY.finditer(accounts_part))
    for entry in user_entries:
        tres = _gpu(_fields(entry["body"]).get("MaxTRESPU", ""), with_usage=True)
        per_user = tres.limit if tres.limit is not None else per_user
        if entry["key"].isdigit() and tres.used is not None:
            used_by_uid[int(entry["key"])] = tres.used
    per_account: int | None = None
    used_by_account: dict[str, int] = {}
    for entry in account_entries:
        tres = _gpu(_fields(entry["body"]).get("MaxTRESPA", ""), with_usage=True)
        per_account = tres.limit if tres.limit is not None else per_account
        if tres.used is not None:
            used_by_account[entry["key"]] = tres.used
    return QosRecord(
        name=name,
        group=_gpu(top.get("GrpTRES", ""), with_usage=True),
        per_job=_gpu(top.get("MaxTRESPJ", ""), with_usage=False).limit,
        per_node=_gpu(top.get("MaxTRESPN", ""), with_usage=False).limit,
        per_user=per_user,
        used_by_uid=used_by_uid,
        per_account=per_account,
        used_by_account=used_by_account,
        listed_users=bool(user_entries),
        listed_accounts=bool(account_entries),
    )


def _assoc_record(line: str) -> tuple[AssocRecord, tuple[str, int] | None]:
    top = _fields(line)
    user, uid = _name_and_id(top.get("UserName", ""))
    parent, _ = _name_and_id(top.get("ParentAccount", ""))
    record = AssocRecord(
        account=top.get("Account", ""),
        user=user or None,
        partition=top.get("Partition") or None,
        parent=parent or None,
        group=_gpu(top.get("GrpTRES", ""), with_usage=True),
        per_job=_gpu(top.get("MaxTRESPJ", ""), with_usage=False).limit,
        per_node=_gpu(top.get("MaxTRESPN", ""), with_usage=False).limit,
    )
    return record, ((user, uid) if user and uid is not None else None)


def parse_assoc_mgr(text: str) -> AssocMgr:
    users: dict[str, tuple[int | None, str | None]] = {}
    uids: dict[str, int] = {}
    assocs: list[AssocRecord] = []
    qos: dict[str, QosRecord] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("QOS="):
            record = _qos_record(line)
            qos[record.name] = record
        elif line.startswith("ClusterName="):
            assoc, known_uid = _assoc_record(line)
            assocs.append(assoc)
            if known_uid:
                uids[known_uid[0]] = known_uid[1]
        elif line.startswith("UserName="):
            top = _fields(line)
            name, uid = _name_and_id(top.get("UserName", ""))
            if name:
                users[name] = (uid, top.get("DefAccount") or None)
    for name, uid in uids.items():
        users.setdefault(name, (uid, None))
    return AssocMgr(users=users, assocs=tuple(assocs), qos=qos)


def assoc_mgr_argv(*, user: str | None, qos: str | None) -> list[str]:
    """One controller call: the person's user record and associations, every account-level
    association (for account and parent limits), and the QOS asked for (every QOS when None)."""
    argv = ["scontrol", "-o", "show", "assoc_mgr", "flags=users,assoc,qos"]
    if user:
        argv.append(f"users={user}")
    if qos:
        argv.append(f"qos={qos}")
    return argv


# A QOS's per-user and per-account limits are printed by assoc_mgr only inside its user and account
# lists, which are empty ("No Users") until someone runs a job in it (verified on 22.05.8). Then the
# definition is read from the accounting database: `sacctmgr -nP show qos where name=Q format=…`
# prints `gpu-per-user|gres/gpu=1|` (sacctmgr(1), --parsable2 without header).
SACCTMGR_QOS_FORMAT = "Name,MaxTRESPerUser,MaxTRESPerAccount"


def sacctmgr_qos_argv(name: str) -> list[str]:
    return ["sacctmgr", "-n", "-P", "show", "qos", f"where name={name}", f"format={SACCTMGR_QOS_FORMAT}"]


def with_qos_definitions(mgr: AssocMgr, sacctmgr_text: str) -> AssocMgr:
    """`mgr` with the per-user and per-account GPU limits sacctmgr gives, where assoc_mgr had none."""
    qos = dict(mgr.qos)
    for line in sacctmgr_text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3 or fields[0] not in qos:
            continue
        record = qos[fields[0]]
        per_user = record.per_user if record.per_user is not None else _gpu(fields[1], with_usage=False).limit
        per_account = (
            record.per_account if record.per_account is not None else _gpu(fields[2], with_usage=False).limit
        )
        qos[fields[0]] = replace(record, per_user=per_user, per_account=per_account)
    return replace(mgr, qos=qos)


def lacks_list_limits(mgr: AssocMgr, name: str) -> bool:
    """Whether assoc_mgr could not show `name`'s per-user or per-account limits (no entries yet)."""
    record = mgr.qos.get(name)
    if record is None:
        return False
    return (record.per_user is None and not record.listed_users) or (
        record.per_account is None and not record.listed_accounts
    )
