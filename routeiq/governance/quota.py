"""Quotas and budgets: which limits apply to a call, reserving against them, settling afterwards.

Limits come from four places: the virtual key's own (``Identity.limits``), ``routeiq.quotas.teams``
and ``routeiq.quotas.users`` for the authenticated team and user, and ``routeiq.quotas.groups`` for
everyone calling a routing group. Each one is a fixed-window counter in the StateStore, named by
scope, subject and metric; the store adds the window bucket.

A call is metered in two steps. Before it, every applicable counter grows in ONE atomic
``reserve`` (all or nothing, so N allowed requests means exactly N across workers and replicas):
one request, the estimated tokens, and the estimated spend. After it, ``settle`` adds the
difference between real usage and the estimate to the same window buckets the reservation used.
While a limit has plenty of room, a reservation also leases units for the process's next calls, and
settlements are held locally until handed back (``governance/leases.py``): most calls then cost no
round trip at all, and the counters are corrected within ``FLUSH_SECONDS``.

The spend estimate is what the call may cost at most: the estimated prompt tokens plus
``max_tokens`` (or ``default_max_tokens``), priced at the dearest deployment the call may reach (its
group and the group's fallbacks; every deployment when the name is not a group). The deployment is
only chosen after the reservation, so the bound must hold for any of them. Concurrent calls then
cannot together overspend a budget by more than what one call exceeds its estimate by.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from routeiq.api.texts import texts
from routeiq.errors import LimitKind, QuotaExceeded, QuotaUnavailable
from routeiq.governance.identity import Identity
from routeiq.governance.leases import Leases, Slot
from routeiq.governance.limits import MICRO_USD_PER_USD, Limit, Metric, QuotaSettings
from routeiq.periodic import every, stop
from routeiq.state.base import Reservation, ReservationResult, StateStore, StateUnavailable, Window
from routeiq.state.memory import bucket_of

logger = logging.getLogger("routeiq.quota")

Scope = Literal["key", "team", "user", "group"]
HeaderKind = LimitKind  # the x-ratelimit-*-<kind> headers, one kind per refusal code

CHARS_PER_TOKEN = 4  # the usual rough rule for English text; settling corrects the estimate
UNAVAILABLE_RETRY_SECONDS = 1.0
FLUSH_SECONDS = 0.5  # how long units given back or leased may sit in a process before going back
LEASE_CALLS = 32  # a reservation may lease up to this many calls' worth for the process's next calls
MAX_PLANS = 10_000  # (caller, group) pairs whose limits are kept worked out

_KIND_OF_METRIC: dict[Metric, HeaderKind] = {
    "requests": "requests",
    "input_tokens": "tokens",
    "output_tokens": "tokens",
    "total_tokens": "tokens",
    "spend_usd": "budget",
}
_WHAT_OF_METRIC: dict[Metric, str] = {
    "requests": "requests",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "total_tokens": "tokens",
    "spend_usd": "USD",
}


@dataclass(frozen=True, slots=True)
class AppliedLimit:
    """One limit as it applies to one subject: the key, team or user it names, or the group.

    What the request path reads (counter name, window, cap, header kind) is worked out once here:
    a call reads each of them several times while reserving, answering and settling.
    """

    scope: Scope
    subject: str
    limit: Limit
    # The metric is always the last part, so a subject containing ':' stays unambiguous.
    counter: str = field(init=False)
    window: Window = field(init=False)
    cap: int = field(init=False)  # the limit as a StateStore integer (micro-dollars for spend)
    kind: HeaderKind = field(init=False)
    cap_text: str = field(init=False)  # the cap as its x-ratelimit-limit-* header says it

    def __post_init__(self) -> None:
        limit = self.limit
        cap = round(limit.limit * MICRO_USD_PER_USD) if limit.is_budget else math.floor(limit.limit)
        kind = _KIND_OF_METRIC[limit.metric]
        object.__setattr__(self, "counter", f"quota:{self.scope}:{self.subject}:{limit.metric}")
        object.__setattr__(self, "window", Window(limit.window))
        object.__setattr__(self, "cap", cap)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "cap_text", _amount_text(kind, cap))

    def describe(self) -> str:
        """For messages, e.g. ``team 'ml': 100 tokens per minute``. Never the key's secret."""
        amount = f"{self.limit.limit:g}" if self.limit.is_budget else str(self.cap)
        amount = f"${amount}" if self.limit.is_budget else f"{amount} {_WHAT_OF_METRIC[self.limit.metric]}"
        return f"{self.scope} {self.subject!r}: {amount} per {self.limit.window}"


@dataclass(frozen=True, slots=True)
class Estimate:
    input_tokens: int
    output_tokens: int
    cost_usd: float = 0.0  # the most these tokens may cost (dearest reachable deployment)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token; an unpriced deployment costs nothing (as settling charges it)."""

    input_per_token: float = 0.0
    output_per_token: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens * self.input_per_token + output_tokens * self.output_per_token


def dearest(prices: Iterable[Price]) -> Price:
    """Each per-token price at its highest among ``prices``: an upper bound for any of them."""
    found = list(prices)
    return Price(
        max((price.input_per_token for price in found), default=0.0),
        max((price.output_per_token for price in found), default=0.0),
    )


class PriceBook:
    """The per-token price a call to a group is reserved at: the dearest deployment it may reach.

    Built once at startup from the deployment table (fixed config). ``groups`` maps each routing
    group to its deployments' prices; ``fallbacks`` names the groups a group falls back to. A name
    that is not a group (a profile, an alias, a typo answered 404 later) gets the dearest price of
    all: the conservative bound, since the serving group is not known when quotas reserve.
    """

    def __init__(
        self, groups: Mapping[str, Sequence[Price]], fallbacks: Callable[[str], Sequence[str]]
    ) -> None:
        self._by_group = {
            group: dearest(
                price for reached in (group, *fallbacks(group)) for price in groups.get(reached, ())
            )
            for group in groups
        }
        self._ceiling = dearest(price for prices in groups.values() for price in prices)

    def bound(self, group: str | None) -> Price:
        return self._by_group.get(group, self._ceiling) if group is not None else self._ceiling


@dataclass(frozen=True, slots=True)
class Usage:
    """What a call really used. ``served`` False: no deployment answered (nothing used but the request)."""

    served: bool
    input_tokens: int | None = None  # None: the upstream did not report usage
    output_tokens: int | None = None
    cost_usd: float | None = None


@dataclass(slots=True)  # not frozen: one is built per call, and frozen fields cost a call each to set
class Ticket:
    """A granted reservation: what was reserved, in which counter buckets, and the counts after it."""

    limits: tuple[AppliedLimit, ...]
    amounts: tuple[int, ...]
    estimate: Estimate
    reserved_at: float
    counts: tuple[int, ...]
    reset_seconds: tuple[float, ...]
    slots: tuple[Slot, ...]  # each limit's counter bucket, which settling corrects
    ends_at: tuple[float, ...]  # when each of those buckets ends


# --- which limits apply ----------------------------------------------------------------------


def applicable_limits(
    identity: Identity, group: str | None, settings: QuotaSettings
) -> tuple[AppliedLimit, ...]:
    """Every limit for this caller and group, one per counter (the smallest when several name one).

    Identity comes from the credential only: master and anonymous callers have no key, team or user,
    so only group limits reach them.
    """
    found: list[AppliedLimit] = []
    if identity.key_id is not None:
        found += [AppliedLimit("key", identity.key_id, limit) for limit in identity.limits]
    if identity.team is not None:
        found += [
            AppliedLimit("team", identity.team, limit) for limit in settings.teams.get(identity.team, ())
        ]
    if identity.user is not None:
        found += [
            AppliedLimit("user", identity.user, limit) for limit in settings.users.get(identity.user, ())
        ]
    if group is not None:
        found += [AppliedLimit("group", group, limit) for limit in settings.groups.get(group, ())]
    tightest: dict[tuple[str, Window], AppliedLimit] = {}
    for applied in found:
        slot = (applied.counter, applied.window)
        # Two limits on one counter must not both reserve: that would count the call twice.
        if slot not in tightest or applied.cap < tightest[slot].cap:
            tightest[slot] = applied
    return tuple(tightest.values())


# --- estimating a call -----------------------------------------------------------------------


def estimate_call(
    body: Mapping[str, Any], route: str, default_max_tokens: int, price: Price | None = None
) -> Estimate:
    """Cheap token estimate: characters / 4 of the prompt, and the output the call may produce;
    priced at ``price`` (the dearest deployment the call may reach) for budgets.

    ``litellm.token_counter`` is ~70 µs for a 500-token chat (and grows with the prompt) against
    well under a microsecond here; the group may be served by any model anyway, and settling
    replaces the estimate with the real usage.
    """
    input_tokens = prompt_tokens(body)
    price = price or Price()
    if route.endswith("/embeddings"):
        return Estimate(input_tokens, 0, price.cost(input_tokens, 0))
    requested = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(requested, int) and not isinstance(requested, bool) and requested >= 0:
        output_tokens = requested
    else:
        output_tokens = default_max_tokens
    choices = body.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
        output_tokens *= choices
    return Estimate(input_tokens, output_tokens, price.cost(input_tokens, output_tokens))


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """The prompt's estimated tokens (characters / 4): for reserving, and for a stream cut short
    before the upstream reported its usage."""
    # The same reading of the body as routing signals and guardrails (routeiq.api.texts).
    return math.ceil(sum(len(text) for text in texts(body)) / CHARS_PER_TOKEN)


def reserved_amount(metric: Metric, estimate: Estimate) -> int:
    if metric == "requests":
        return 1
    if metric == "input_tokens":
        return estimate.input_tokens
    if metric == "output_tokens":
        return estimate.output_tokens
    if metric == "total_tokens":
        return estimate.input_tokens + estimate.output_tokens
    # Spend: the estimated cost, at least one micro-dollar so that a spent budget refuses even an
    # unpriced call. Rounded to the micro-dollar first: 0.02 * 1e6 is 20000.000000000004.
    return max(1, math.ceil(round(estimate.cost_usd * MICRO_USD_PER_USD, 3)))


def settled_amount(metric: Metric, usage: Usage, reserved: int) -> int:
    """What the counter should finally hold for this call (the reservation is then corrected)."""
    if metric == "requests":
        return reserved  # a request counts even when it failed
    if not usage.served:
        return 0  # nothing reached a model: give back tokens and spend
    if usage.input_tokens is None and usage.output_tokens is None:
        return reserved  # no usage reported: the estimate stands (spend included)
    if metric == "spend_usd":
        return round((usage.cost_usd or 0.0) * MICRO_USD_PER_USD)  # unpriced models cost nothing
    input_tokens, output_tokens = usage.input_tokens or 0, usage.output_tokens or 0
    if metric == "input_tokens":
        return input_tokens
    if metric == "output_tokens":
        return output_tokens
    return input_tokens + output_tokens


def usage_of(served: bool, usage: Mapping[str, Any] | None, cost_usd: float | None) -> Usage:
    """From an OpenAI ``usage`` object (``prompt_tokens``/``completion_tokens``)."""
    if not served:
        return Usage(False)
    if not usage:
        return Usage(True, cost_usd=cost_usd)
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Usage(
        True,
        input_tokens=prompt if isinstance(prompt, int) else 0,
        output_tokens=completion if isinstance(completion, int) else 0,
        cost_usd=cost_usd,
    )


# --- response headers ------------------------------------------------------------------------


def format_reset(seconds: float) -> str:
    """OpenAI's style (a Go duration): ``250ms``, ``12s``, ``1m30s``, ``2h0m5s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _amount_text(kind: HeaderKind, micro_or_count: int) -> str:
    if kind == "budget":
        return f"{micro_or_count / MICRO_USD_PER_USD:.6f}".rstrip("0").rstrip(".")
    return str(micro_or_count)


_HEADER_NAMES: dict[HeaderKind, tuple[str, str, str]] = {
    kind: (f"x-ratelimit-limit-{kind}", f"x-ratelimit-remaining-{kind}", f"x-ratelimit-reset-{kind}")
    for kind in ("requests", "tokens", "budget")
}


def limit_headers(
    limits: Sequence[AppliedLimit],
    counts: Sequence[int],
    resets: Sequence[float],
    force: int | None = None,
) -> dict[str, str]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens,budget}`` of the tightest limit of each
    kind (least remaining); ``force`` picks the refused limit for its kind instead."""
    chosen: dict[HeaderKind, int] = {}
    for index, applied in enumerate(limits):
        current = chosen.get(applied.kind)
        if current is not None and current == force:
            continue
        remaining = applied.cap - counts[index]
        if index == force or current is None or remaining < limits[current].cap - counts[current]:
            chosen[applied.kind] = index
    headers: dict[str, str] = {}
    for kind, index in chosen.items():
        applied = limits[index]
        limit_name, remaining_name, reset_name = _HEADER_NAMES[kind]
        headers[limit_name] = applied.cap_text
        headers[remaining_name] = _amount_text(kind, max(0, applied.cap - counts[index]))
        headers[reset_name] = format_reset(resets[index])
    return headers


# --- the engine ------------------------------------------------------------------------------


class Quotas:
    """Reserve and settle quota counters in the StateStore of the ``quotas`` feature.

    Units leased by a reservation, and given back by a settlement, are held by this process
    (``Leases``) and handed back to the shared counters every ``FLUSH_SECONDS``.
    """

    def __init__(self, store: StateStore, settings: QuotaSettings, prices: PriceBook | None = None) -> None:
        self._store = store
        self._settings = settings
        self._prices = prices or PriceBook({}, lambda group: ())
        self._leases = Leases()
        self._tasks: list[asyncio.Task[None]] = []
        # The limits of each (caller, group) seen lately. Keyed by the Identity object, which the key
        # cache hands out for as long as the key is unchanged; the object is kept beside the limits
        # so a recycled id() is never mistaken for it.
        self._plans: dict[tuple[int, str | None], tuple[Identity, tuple[AppliedLimit, ...]]] = {}
        # The buckets of each limits tuple (from _plans) while its windows last: id -> (limits,
        # valid from, valid until, slots, ends).
        self._bucket_cache: dict[
            int, tuple[Sequence[AppliedLimit], float, float, tuple[Slot, ...], tuple[float, ...]]
        ] = {}
        # Counter buckets whose lease this process is refilling from the shared store right now.
        self._refills: dict[tuple[Slot, ...], asyncio.Event] = {}

    @property
    def settings(self) -> QuotaSettings:
        return self._settings

    def start(self) -> None:
        self._tasks = [every(FLUSH_SECONDS, self.flush, "quota flush")]

    async def close(self) -> None:
        """Hand back what this process holds before the store closes."""
        await stop(self._tasks)
        await self.flush()

    def may_apply(self, identity: Identity) -> bool:
        """False when no limit can reach this caller whatever the group: then the call costs nothing."""
        return bool(
            self._settings.groups
            or (identity.key_id is not None and identity.limits)
            or (identity.team is not None and identity.team in self._settings.teams)
            or (identity.user is not None and identity.user in self._settings.users)
        )

    def limits_for(self, identity: Identity, group: str | None) -> tuple[AppliedLimit, ...]:
        plan_key = (id(identity), group)
        known = self._plans.get(plan_key)
        if known is not None and known[0] is identity:
            return known[1]
        limits = applicable_limits(identity, group, self._settings)
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()  # bounded, like the key cache that hands out the identities
        self._plans[plan_key] = (identity, limits)
        return limits

    def estimate(self, body: Mapping[str, Any], route: str, group: str | None = None) -> Estimate:
        """What the call may use, priced at the dearest deployment ``group`` may reach."""
        return estimate_call(body, route, self._settings.default_max_tokens, self._prices.bound(group))

    async def reserve(
        self, limits: Sequence[AppliedLimit], estimate: Estimate, now: float | None = None
    ) -> Ticket:
        """Reserve the call against every limit at once; ``QuotaExceeded`` when refused
        (``QuotaUnavailable`` if the shared store is down and quotas fail closed)."""
        now = time.time() if now is None else now
        amounts = tuple([reserved_amount(applied.limit.metric, estimate) for applied in limits])
        slots, ends_at = self._buckets(limits, now)
        resets = tuple([end - now for end in ends_at])
        held = self._leases.take(slots, amounts)
        if held is None and (refill := self._refills.get(slots)) is not None:
            # Another call of this process is fetching a lease for these counters: its lease will
            # most likely serve this call too, so wait for it instead of also going to the store
            # (after a flush, every concurrent call would otherwise make its own round trip).
            await refill.wait()
            held = self._leases.take(slots, amounts)
        if held is not None:
            return Ticket(tuple(limits), amounts, estimate, now, held, resets, slots, ends_at)
        refilling = slots not in self._refills
        if refilling:
            self._refills[slots] = asyncio.Event()
        try:
            counts, resets = await self._reserve_shared(limits, amounts, slots, ends_at, now)
        finally:
            if refilling:
                self._refills.pop(slots).set()
        return Ticket(tuple(limits), amounts, estimate, now, counts, resets, slots, ends_at)

    def _buckets(
        self, limits: Sequence[AppliedLimit], now: float
    ) -> tuple[tuple[Slot, ...], tuple[float, ...]]:
        """The counter bucket each limit's window has at ``now``, and when each ends: worked out
        again only when one of the windows has moved on (most calls of a minute share them)."""
        known = self._bucket_cache.get(id(limits))
        if known is not None and known[0] is limits and known[1] <= now < known[2]:
            return known[3], known[4]
        buckets = [bucket_of(applied.window, now) for applied in limits]
        slots = tuple(
            (applied.counter, applied.window, bucket.id)
            for applied, bucket in zip(limits, buckets, strict=True)
        )
        ends_at = tuple(bucket.ends_at for bucket in buckets)
        if len(self._bucket_cache) >= MAX_PLANS:
            self._bucket_cache.clear()
        self._bucket_cache[id(limits)] = (limits, now, min(ends_at, default=now), slots, ends_at)
        return slots, ends_at

    async def _reserve_shared(
        self,
        limits: Sequence[AppliedLimit],
        amounts: tuple[int, ...],
        slots: tuple[Slot, ...],
        ends_at: tuple[float, ...],
        now: float,
    ) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """One atomic reservation in the shared store, handing back this process's spare and asking
        for a lease: the counts after it and the windows' reset times."""
        releases = [self._leases.release_for(slot) for slot in slots]
        reservations = [
            Reservation(applied.counter, applied.window, amount, applied.cap, release, LEASE_CALLS * amount)
            for applied, amount, release in zip(limits, amounts, releases, strict=True)
        ]
        try:
            result = await self._store.reserve(reservations, now=now)
        except StateUnavailable as error:
            self._restore(slots, releases)
            # (the outage itself is logged once, by StateHealth; not once per refused call)
            logger.debug("quota store unavailable, refusing the call: %s", error)
            raise QuotaUnavailable(UNAVAILABLE_RETRY_SECONDS) from None
        if not result.ok:
            self._restore(slots, releases)
            raise refusal(limits, amounts, result)
        counts = tuple(
            self._leases.granted(slot, now, end, units, amount, count)
            for slot, end, units, amount, count in zip(
                slots, ends_at, result.granted, amounts, result.counts, strict=True
            )
        )
        return counts, result.reset_seconds

    def headers(self, ticket: Ticket) -> dict[str, str]:
        return limit_headers(ticket.limits, ticket.counts, ticket.reset_seconds)

    def settle(self, ticket: Ticket, usage: Usage) -> None:
        """Correct every counter by (real - reserved), in the reservation's own window buckets.

        Held by this process until the next flush (or its next reservation of that counter), so
        settling costs no round trip. A window that has ended meanwhile is left alone.
        """
        now = time.time()
        for applied, reserved, slot, ends_at in zip(
            ticket.limits, ticket.amounts, ticket.slots, ticket.ends_at, strict=True
        ):
            delta = settled_amount(applied.limit.metric, usage, reserved) - reserved
            if delta and ends_at > now:
                self._leases.settle(slot, ticket.reserved_at, ends_at, delta)

    async def flush(self) -> None:
        """Hand every spare unit (and debt) back to the shared counters, in one round trip."""
        handed = self._leases.to_hand_back(time.time())
        if not handed:
            return
        try:
            await self._store.window_adjust([adjustment for _, _, adjustment in handed])
        except StateUnavailable as error:  # kept, and tried again next time
            for slot, units, _ in handed:
                self._leases.restore_handed(slot, units)
            logger.warning("could not hand quota units back yet: %s", error)

    def _restore(self, slots: Sequence[Slot], units: Sequence[int]) -> None:
        for slot, count in zip(slots, units, strict=True):
            self._leases.restore(slot, count)


def refusal(
    limits: Sequence[AppliedLimit], amounts: Sequence[int], result: ReservationResult
) -> QuotaExceeded:
    """The refusal of a reservation: which limit, when it resets, and whether waiting helps."""
    index = result.refused_index if result.refused_index is not None else 0
    applied = limits[index]
    reset = result.reset_seconds[index]
    # Waiting never helps a budget (it needs a top-up) nor a call bigger than the whole limit.
    hopeless = applied.limit.is_budget or amounts[index] > applied.cap
    if amounts[index] > applied.cap:
        needed = _amount_text(applied.kind, amounts[index])
        needed = f"${needed}" if applied.limit.is_budget else needed
        message = (
            f"this request alone needs about {needed} of the limit of {applied.describe()}; "
            "lower max_tokens or shorten the prompt"
        )
    elif applied.limit.is_budget and result.counts[index] < applied.cap:
        left = _amount_text("budget", applied.cap - result.counts[index])
        message = (
            f"budget nearly spent for {applied.describe()}: ${left} left, less than this request may "
            f"cost (${_amount_text('budget', amounts[index])}); lower max_tokens, or it renews in "
            f"{format_reset(reset)}"
        )
    elif applied.limit.is_budget:
        message = f"budget spent for {applied.describe()}; it renews in {format_reset(reset)}"
    else:
        message = f"limit reached for {applied.describe()}; it resets in {format_reset(reset)}"
    headers = limit_headers(limits, result.counts, result.reset_seconds, force=index)
    return QuotaExceeded(message, applied.kind, headers, retry_after=reset, hopeless=hopeless)
