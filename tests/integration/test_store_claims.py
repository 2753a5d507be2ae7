"""Once-only claims: one row per key, taken by exactly one caller however many race for it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from alembic import command

from bot.store import Store
from bot.store.database import alembic_config


def test_exactly_one_of_many_concurrent_claimants_wins(database_url: str) -> None:
    Store(database_url).migrate()
    stores = [Store(database_url) for _ in range(20)]  # as many replicas, each with its own pool
    gate = threading.Barrier(len(stores))

    def claim(store: Store) -> bool:
        gate.wait()
        return store.claim("slack-approval-decision:r-1", "U-APPROVER")

    with ThreadPoolExecutor(max_workers=len(stores)) as pool:
        won = list(pool.map(claim, stores))
    assert won.count(True) == 1
    assert stores[0].claim("slack-approval-decision:r-2", "U-APPROVER")  # another key is free
    for store in stores:
        store.close()


def test_claims_are_not_requests_and_old_claim_rows_move_to_the_table(store: Store) -> None:
    with store.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0006")
    asked = store.new_request("U-ALICE", "slack", "1 a100 for 1 hour to run python x.py")
    store.new_request(
        "U-BOB",
        "slack",
        "slack-approval-decision:r-9 (click 1f)",
        idempotency_key="slack-approval-decision:r-9",
    )
    store.new_request("U-ALICE", "slack", "slack event Ev1 (delivery 2a)", idempotency_key="slack-event:Ev1")
    store.migrate()

    assert not store.claim("slack-approval-decision:r-9", "U-CAROL")  # decided before the upgrade
    assert not store.claim("slack-event:Ev1", "U-ALICE")  # answered before the upgrade
    assert [record.id for record in store.history(None)] == [asked]  # claims are not requests
