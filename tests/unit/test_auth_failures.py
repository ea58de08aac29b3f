"""Failed admin authentication is audited, but an attacker cannot flood the audit log with it."""

from __future__ import annotations

from routeiq.governance.auth_failures import FailedAuthRecorder, key_fingerprint


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_record_per_source_per_interval_and_the_next_counts_the_rest() -> None:
    clock = Clock()
    recorder = FailedAuthRecorder(interval_seconds=60, clock=clock)
    assert recorder.admit("10.0.0.1") == 0
    assert [recorder.admit("10.0.0.1") for _ in range(5)] == [None] * 5
    assert recorder.admit("10.0.0.2") == 0  # another source has its own interval
    clock.now += 61
    assert recorder.admit("10.0.0.1") == 5  # the five left out are counted in the next record
    assert recorder.admit("10.0.0.1") is None


def test_many_sources_together_stay_under_the_cap_per_interval() -> None:
    clock = Clock()
    recorder = FailedAuthRecorder(interval_seconds=60, max_per_interval=3, clock=clock)
    admitted = [recorder.admit(f"10.0.{n // 256}.{n % 256}") for n in range(1000)]
    assert sum(1 for outcome in admitted if outcome is not None) == 3
    clock.now += 60
    assert recorder.admit("10.9.9.9") == 0  # a new interval writes again


def test_the_table_of_sources_is_bounded() -> None:
    clock = Clock()
    recorder = FailedAuthRecorder(interval_seconds=60, max_per_interval=10**6, max_sources=100, clock=clock)
    for n in range(5000):
        recorder.admit(f"source-{n}")
    assert len(recorder._sources) == 100
    clock.now += 60
    recorder.admit("late")
    assert len(recorder._sources) == 1  # sources whose interval ended are forgotten


def test_a_fingerprint_never_contains_the_key() -> None:
    key = "sk-guess-123456"
    fingerprint = key_fingerprint(key)
    assert fingerprint.startswith("sha256:") and key not in fingerprint and len(fingerprint) == 19
    assert key_fingerprint(key) == fingerprint != key_fingerprint(key + "7")
