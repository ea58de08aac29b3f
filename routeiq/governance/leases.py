"""Quota units this process holds in the shared counters: leases, and settlements not yet handed back.

A reservation in Redis may grant more than the call needs (a *lease*, see ``lease_granted``): the
rest serves this process's next calls of the same counter without a round trip. A settlement that
gives tokens or spend back adds to the same local spare. Every ``FLUSH_SECONDS`` the spare goes
back to the shared counter, in one round trip for all counters; a reservation that needs Redis
anyway hands back its counter's spare in the same atomic step. So the shared counters are never
below what was really used, never above it by more than the spare held for a moment, and N
allowed requests is still exactly N: leases are only granted while many calls still fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from routeiq.state.base import Window, WindowAdjustment

Slot = tuple[str, Window, int]  # counter, window, bucket id


@dataclass(slots=True)
class _Held:
    granted: int = 0  # units this process added to the shared counter and has not handed back
    used: int = 0  # units its calls hold: their reservations, corrected by their settlements
    count: int | None = None  # the shared counter as last seen (None: not seen yet)
    at: float = 0.0  # a moment inside the bucket (to address it when handing back)
    ends_at: float = 0.0

    @property
    def spare(self) -> int:
        return self.granted - self.used


class Leases:
    """The units held per counter bucket, for one process."""

    def __init__(self) -> None:
        self._held: dict[Slot, _Held] = {}

    def take(self, slots: Sequence[Slot], amounts: Sequence[int]) -> tuple[int, ...] | None:
        """Serve a call from the spare of every one of its counters, all or nothing; the counts it
        implies (shared count less what is still spare here), or None to go to the shared store."""
        # (Every call of a busy process comes here: plain loops, no properties.)
        held: list[tuple[_Held, int]] = []
        for slot, amount in zip(slots, amounts, strict=True):
            entry = self._held.get(slot)
            if entry is None or entry.count is None or entry.granted - entry.used < amount:
                return None
            held.append((entry, entry.count))
        counts = []
        for (entry, count), amount in zip(held, amounts, strict=True):
            entry.used += amount
            counts.append(count - entry.granted + entry.used)  # the shared count less what is spare here
        return tuple(counts)

    def release_for(self, slot: Slot) -> int:
        """Hand the slot's spare to a reservation about to go to the shared store: set aside now, so
        no concurrent call takes it meanwhile (``restore`` if the reservation fails)."""
        entry = self._held.get(slot)
        if entry is None or entry.spare == 0:
            return 0
        spare = entry.spare  # negative: a debt (real usage above the reservation), added first
        entry.granted -= spare
        return spare

    def restore(self, slot: Slot, units: int) -> None:
        """A reservation that was to hand ``units`` back failed: they are this process's again."""
        if units:
            self._entry(slot, 0.0, 0.0).granted += units

    def restore_handed(self, slot: Slot, units: int) -> None:
        """A hand-back (``to_hand_back``) failed: the units, and the shared count, are as before."""
        entry = self._entry(slot, 0.0, 0.0)
        entry.granted += units
        if entry.count is not None:
            entry.count += units

    def granted(self, slot: Slot, at: float, ends_at: float, units: int, used: int, count: int) -> int:
        """The shared store granted ``units`` (``used`` of them by the call); returns the call's count."""
        entry = self._entry(slot, at, ends_at)
        entry.granted += units
        entry.used += used
        entry.count = count
        return count - entry.spare

    def settle(self, slot: Slot, at: float, ends_at: float, delta: int) -> None:
        """A call's real usage differs from its reservation by ``delta``: it is this process's spare
        (or debt) until handed back."""
        if delta:
            self._entry(slot, at, ends_at).used += delta

    def to_hand_back(self, now: float) -> list[tuple[Slot, int, WindowAdjustment]]:
        """Set aside every spare (and debt) of a live bucket, as adjustments for the shared store;
        ended buckets are forgotten (nobody reads them again)."""
        out = []
        for slot, entry in list(self._held.items()):
            if entry.ends_at <= now:
                del self._held[slot]
                continue
            spare = entry.spare
            if spare:
                entry.granted -= spare
                if entry.count is not None:  # as the shared counter will be once it takes them
                    entry.count -= spare
                out.append((slot, spare, WindowAdjustment(slot[0], slot[1], -spare, entry.at)))
        return out

    def _entry(self, slot: Slot, at: float, ends_at: float) -> _Held:
        entry = self._held.get(slot)
        if entry is None:
            entry = self._held[slot] = _Held(at=at, ends_at=ends_at)
        elif not entry.ends_at:
            entry.at, entry.ends_at = at, ends_at
        return entry
