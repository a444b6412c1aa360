"""Group commit: concurrent commands share transactions, and a clash fails only its command."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from domain.app import Smq
from domain.errors import Conflict
from infra.groupcommit import GroupCommitter


def _wait_for(check: Any, bound: float = 5.0) -> None:
    deadline = time.monotonic() + bound
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


@pytest.fixture
def app() -> Smq:
    return Smq(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def test_queued_commands_commit_together_and_a_clash_fails_alone(app: Smq) -> None:
    gate, sizes = threading.Event(), []

    def slow_save(*events: Any) -> list[Any]:
        sizes.append(len(events))
        if len(sizes) == 1:
            gate.wait(5)  # hold the first transaction so that the others queue up behind it
        return app.save(*events)

    committer = GroupCommitter(slow_save)
    app.saver = committer
    results: dict[str, Any] = {}

    def create(identity: str, key: str) -> None:
        try:
            results[key] = app.create_user(identity, "12345678")
        except Conflict as exc:
            results[key] = exc

    first = threading.Thread(target=create, args=("lead@example.com", "lead"))
    first.start()
    _wait_for(lambda: len(sizes) == 1)
    others = [threading.Thread(target=create, args=(ident, key)) for key, ident in [
        ("b1", "b1@example.com"), ("b2", "b2@example.com"), ("dup", "b1@example.com"),
        ("b3", "b3@example.com")]]
    for t in others:
        t.start()
    _wait_for(lambda: len(committer._queue) == 4)
    gate.set()
    for t in [first, *others]:
        t.join(5)

    conflicts = [k for k, v in results.items() if isinstance(v, Conflict)]
    assert len(conflicts) == 1 and conflicts[0] in ("b1", "dup")
    assert sizes[1] == 4 * 2  # one transaction offered with the four queued commands' events
    created = [v for v in results.values() if not isinstance(v, Conflict)]
    assert len(created) == 4
    positions = [d.position for d in created]
    assert len(set(positions)) == 4 and all(p is not None for p in positions)
    for identity in ("lead@example.com", "b1@example.com", "b2@example.com", "b3@example.com"):
        assert app.user_by_identity(identity) is not None
    assert app.recorder.max_notification_id() == 4 * 2


def test_a_batch_that_commits_hands_each_command_its_own_position(app: Smq) -> None:
    committer = GroupCommitter(app.save)
    app.saver = committer
    done = [app.create_user(f"u{i}@example.com", "12345678") for i in range(3)]
    assert [d.position for d in done] == [2, 4, 6]
    assert committer.batches == 3 and committer.commands == 3


def test_a_store_failure_reaches_every_waiting_command() -> None:
    def broken(*events: Any) -> list[Any]:
        raise OSError("database is gone")

    committer = GroupCommitter(broken)
    with pytest.raises(OSError):
        committer(object())
    assert committer._leading is False  # the next command can lead again


def test_no_command_waits_behind_a_load_that_never_stops() -> None:
    """A leader hands the lead on once its own command is done: under a steady load from
    many threads, a call commits its own batch and returns (it used to be that the first
    leader kept leading, its own command unanswered, as long as others came)."""
    mine = threading.local()

    def save(*events: Any) -> list[Any]:
        mine.batches += 1  # transactions run by the calling thread within its one call
        time.sleep(0.002)  # a transaction's round trip
        return []

    committer = GroupCommitter(save)
    led: list[int] = []
    stop = time.monotonic() + 0.6

    def client() -> None:
        while time.monotonic() < stop:
            mine.batches = 0
            committer(object())
            led.append(mine.batches)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert committer.batches > 50  # the load went on for many transactions
    assert max(led) == 1, max(led)  # a leader's first batch holds its own command
    assert committer._leading is False
