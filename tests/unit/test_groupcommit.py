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
    assert committer._thread is None  # a call that finds no transaction under way saves itself


def test_a_store_failure_reaches_every_waiting_command_and_the_next_commits() -> None:
    gate, calls = threading.Event(), []

    def broken_then_back(*events: Any) -> list[Any]:
        calls.append(len(events))
        if len(calls) == 1:
            gate.wait(5)  # the others queue up behind this transaction, which fails
        if len(calls) <= 2:
            raise OSError("database is gone")
        return []

    committer = GroupCommitter(broken_then_back)
    failures: list[BaseException] = []

    def call() -> None:
        try:
            committer(object())
        except OSError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    threads[0].start()
    _wait_for(lambda: len(calls) == 1)
    for t in threads[1:]:
        t.start()
    _wait_for(lambda: len(committer._queue) == 3)
    gate.set()
    for t in threads:
        t.join(5)
    assert len(failures) == 4 and calls[:2] == [1, 3]  # each waiting command got the failure
    assert committer(object()) == []  # and the store, back, takes the next one
    assert committer._busy is False
    committer.close()


def _queue_behind_a_held_transaction(committer: GroupCommitter, gate: threading.Event,
                                     count: int) -> list[threading.Thread]:
    """A first call whose transaction waits for ``gate``, then ``count`` calls queued behind it
    (which the committer's thread saves once the gate opens)."""
    first = threading.Thread(target=committer, args=("first",))
    first.start()
    _wait_for(lambda: committer.batches == 1)
    queued = [threading.Thread(target=committer, args=(i,)) for i in range(count)]
    for t in queued:
        t.start()
    _wait_for(lambda: len(committer._queue) == count)
    return [first, *queued]


def test_the_committing_thread_outlives_a_failure_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure of a transaction's own besides the save's (here its metrics) fails no command
    already answered, leaves none waiting, and the next saves are taken, by a caller or by
    the committer's thread."""
    def store_transaction(commands: int, seconds: float) -> None:
        raise RuntimeError("metrics broke")

    monkeypatch.setattr("infra.metrics.store_transaction", store_transaction)
    gate = threading.Event()
    committer = GroupCommitter(lambda *events: (gate.wait(5), [])[1])
    threads = _queue_behind_a_held_transaction(committer, gate, 3)
    gate.set()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)
    assert committer.commands == 4 and committer._thread is not None
    assert committer(object()) == []  # a lone call leads its own transaction again
    committer.close()


def test_close_saves_what_is_queued_and_refuses_what_comes_after() -> None:
    gate, saved = threading.Event(), []

    def save(*events: Any) -> list[Any]:
        gate.wait(5)
        saved.extend(events)
        return []

    committer = GroupCommitter(save)
    threads = _queue_behind_a_held_transaction(committer, gate, 2)
    closing = threading.Thread(target=committer.close)
    closing.start()
    _wait_for(lambda: committer._closed)
    gate.set()
    closing.join(5)
    for t in threads:
        t.join(5)
    assert sorted(saved, key=str) == [0, 1, "first"]
    with pytest.raises(RuntimeError):
        committer(3)


def test_close_ends_the_committers_thread() -> None:
    gate = threading.Event()
    committer = GroupCommitter(lambda *events: (gate.wait(5), [])[1])
    threads = _queue_behind_a_held_transaction(committer, gate, 2)
    gate.set()
    for t in threads:
        t.join(5)
    thread = committer._thread
    assert thread is not None and thread.is_alive()  # it saved the queue, and waits for more
    committer.close()
    assert not thread.is_alive()


def test_the_application_closes_its_committer() -> None:
    app = Smq(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, saver=GroupCommitter)
    app.create_user("u@example.com", "12345678")
    committer = app.saver
    assert isinstance(committer, GroupCommitter)
    app.close()
    assert committer._closed


def test_no_command_waits_behind_a_load_that_never_stops() -> None:
    """Under a steady load from many threads, a call returns once its own batch is saved:
    behind at most the transaction under way when it came, never behind the queue's later
    arrivals (a committer whose first leader kept leading, its own command unanswered, as long
    as others came, was once the bug)."""

    committed_in: dict[int, int] = {}  # a call's number: the transaction that saved it

    def save(*events: Any) -> list[Any]:
        for e in events:
            committed_in[e] = committer.batches
        time.sleep(0.002)  # a transaction's round trip
        return []

    committer = GroupCommitter(save)
    waited: list[int] = []
    stop = time.monotonic() + 0.6
    numbers = iter(range(10**9))

    def client() -> None:
        while time.monotonic() < stop:
            before, mine = committer.batches, next(numbers)
            committer(mine)
            waited.append(committed_in[mine] - before)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert committer.batches > 50  # the load went on for many transactions
    assert max(waited) <= 2, max(waited)  # the one under way, then its own
    committer.close()
