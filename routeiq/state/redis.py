"""``RedisStateStore``: the ``StateStore`` every worker and replica shares, over ``redis.asyncio``.

Atomicity lives in Redis, never in the process: counters are INCRBY/HINCRBY (+ PEXPIRE in the same
MULTI), a reservation is one Lua script. Every key and channel carries a prefix, so several gateways
(or test runs) can share one Redis.

Failure model: short socket and connect timeouts plus an overall deadline per call, and every Redis
error surfaces as ``StateUnavailable``. Whether that refuses or degrades a feature is
``ResilientStateStore``'s business, not this store's. A pooled connection Redis dropped (``CLIENT
KILL``, a restart, an idle timeout) must not count as Redis being down: a connection error is retried
once, at once, on a fresh connection, and a connection idle for a while is PINGed before use. A
timeout is never retried, so a frozen Redis costs the configured timeout, not twice it.

Notices: one background task per store owns one pub/sub connection. It reconnects by itself (with
backoff capped at ~1 s) and, because notices published while it was away are lost, runs the
reconnect hooks after every (re)connection once its subscriptions are confirmed, so features can
resync from the stored truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import BlockingConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from routeiq.state.base import (
    LEASE_MIN_CALLS_LEFT,
    LEASE_SHARE,
    Handler,
    Reservation,
    ReservationResult,
    StateUnavailable,
    Window,
    WindowAdjustment,
)
from routeiq.state.memory import (
    WINDOW_GRACE_SECONDS,
    Bucket,
    ReconnectHook,
    bucket_of,
    decode_record,
    deliver,
    encode,
    run_hooks,
)

logger = logging.getLogger("routeiq.state")

T = TypeVar("T")
RedisClient = Redis | RedisCluster

_POLL_SECONDS = 0.25  # how often the listener looks for new subscriptions while idle
_KEEPALIVE_SECONDS = 5.0  # ping an idle pub/sub connection this often ...
_SILENT_LIMIT_SECONDS = 3 * _KEEPALIVE_SECONDS  # ... and drop it when nothing comes back for this long
_BACKOFF_FIRST_SECONDS = 0.05
_BACKOFF_MAX_SECONDS = 1.0
# A pooled connection unused for this long is PINGed before its next command (redis-py's
# health_check_interval), so one Redis dropped meanwhile is replaced before it fails a call.
HEALTH_CHECK_SECONDS = 5
# Connections per process. Past it a call waits (up to the timeout) for one to come free instead of
# failing at once, as redis-py's default pool does past 100: a burst of concurrent requests must
# not look like Redis being down.
MAX_CONNECTIONS = 256

# KEYS[i]: the window bucket of reservation i; ARGV, per reservation in turn: amount, limit, ttl_ms,
# release, lease, and at the end the two lease constants. Checks every reservation first (its
# release handed back, cumulatively when two name the same bucket), so a refusal changes nothing;
# then grants each its amount plus a lease (``lease_granted`` in state/base.py, the same rule).
# Returns {ok, refused index (1-based, 0 if none), {count of each bucket after}, {units granted}}.
_RESERVE_LUA = """
local n = #KEYS
local min_calls = tonumber(ARGV[5 * n + 1])
local share = tonumber(ARGV[5 * n + 2])
local projected = {}
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[5 * i - 4])
  local limit = tonumber(ARGV[5 * i - 3])
  local current = projected[key] or (tonumber(redis.call('GET', key) or '0') - tonumber(ARGV[5 * i - 1]))
  if current + amount > limit then
    local counts = {}
    for j, other in ipairs(KEYS) do
      counts[j] = tonumber(redis.call('GET', other) or '0') - tonumber(ARGV[5 * j - 1])
    end
    return {0, i, counts, {}}
  end
  projected[key] = current + amount
end
local counts, granted = {}, {}
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[5 * i - 4])
  local lease = tonumber(ARGV[5 * i])
  local room = tonumber(ARGV[5 * i - 3]) - projected[key]
  local extra = 0
  if lease > 0 and room >= min_calls * math.max(amount, 1) then
    extra = math.min(lease, math.floor(room / share))
  end
  projected[key] = projected[key] + extra
  counts[i] = redis.call('INCRBY', key, amount + extra - tonumber(ARGV[5 * i - 1]))
  redis.call('PEXPIRE', key, ARGV[5 * i - 2])
  granted[i] = amount + extra
end
return {1, 0, counts, granted}
"""


# KEYS: window buckets; ARGV: each bucket's amount and ttl in ms, in turn. Only a counter that lost its
# counts (a restart, a failover) can fall below zero: it stops at zero.
_WINDOW_ADJUST_LUA = """
for i, key in ipairs(KEYS) do
    if redis.call('INCRBY', key, ARGV[2 * i - 1]) < 0 then
        redis.call('SET', key, 0)
    end
    redis.call('PEXPIRE', key, ARGV[2 * i])
end
return 0
"""

# KEYS: the counter hash, the writer's batch marks (a hash: counter key -> last batch added); ARGV:
# the counter key, the batch number, the marks' ttl in ms, then field, amount pairs.
_HINCR_ONCE_LUA = """
local done = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if done >= tonumber(ARGV[2]) then
    return 0
end
for i = 4, #ARGV, 2 do
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""
# A writer's marks outlive any outage its resend could follow.
_BATCH_MARKS_TTL_SECONDS = 24 * 3600

# KEYS: the versions hash, the values hash; ARGV: field, value (JSON), floor. The version and the value
# change together, so a reader never pairs one version with another version's value.
_PUT_VERSION_LUA = """
local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local version = math.max(stored, tonumber(ARGV[3])) + 1
redis.call('HSET', KEYS[1], ARGV[1], version)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return version
"""


# KEYS as above; ARGV: field, value (JSON), version. Only ever moves a version forward.
_RESTORE_VERSION_LUA = """
local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if stored >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


def _ttl_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _unavailable(exc: BaseException) -> StateUnavailable:
    """A short, log-friendly reason: unreachable (connection/timeout) or an error Redis answered."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | TimeoutError):
        return StateUnavailable(f"redis unreachable: {type(exc).__name__}")
    return StateUnavailable(f"redis error: {type(exc).__name__}: {exc}"[:200])


class _Session:
    """One pub/sub connection's life: what it asked for, what Redis confirmed, whether it dropped."""

    def __init__(self, now: float) -> None:
        self.requested: set[str] = set()
        self.confirmed: set[str] = set()
        self.hooks_done = False
        self.dropped = False
        self.last_heard = now
        self.last_ping = now

    def on_connect(self, connection: Any) -> None:
        """redis-py re-established the connection underneath us: notices may have been missed."""
        self.dropped = True


class RedisStateStore:
    """Shared state in Redis. Build one with ``create_redis_store``; one per process is plenty."""

    backend = "redis"

    def __init__(
        self,
        client: RedisClient,
        *,
        key_prefix: str = "routeiq:",
        timeout_seconds: float = 0.5,
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        """``client`` is owned (closed by ``close``); ``on_close`` releases anything else the factory
        opened (e.g. the Sentinel connections)."""
        self._client = client
        self._prefix = key_prefix
        # A call may need a connect and a round trip, each bounded by the socket timeouts; this
        # overall bound catches anything they do not cover (e.g. a stuck DNS lookup).
        self._deadline = 2 * timeout_seconds + 0.1
        self._startup_wait = 2 * timeout_seconds
        self._on_close = list(on_close)
        self._reserve_script = client.register_script(_RESERVE_LUA)
        self._hincr_once_script = client.register_script(_HINCR_ONCE_LUA)
        self._window_adjust_script = client.register_script(_WINDOW_ADJUST_LUA)
        self._put_version_script = client.register_script(_PUT_VERSION_LUA)
        self._restore_version_script = client.register_script(_RESTORE_VERSION_LUA)
        self._handlers: dict[str, list[Handler]] = {}
        self._reconnect_hooks: list[ReconnectHook] = []
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self._session: _Session | None = None
        self._ready = asyncio.Event()  # set while every subscribed channel is confirmed live

    @property
    def key_prefix(self) -> str:
        return self._prefix

    # --- lifecycle ---

    async def start(self) -> None:
        """Launch the listener and give it a moment to subscribe; never fails if Redis is away (the
        listener keeps trying, and ``ping`` tells the truth)."""
        self._closing = False
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen_forever(), name="routeiq-state-listener")
        await self.wait_subscribed(self._startup_wait)

    async def close(self) -> None:
        await self._stop_listener()
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()
        for release in self._on_close:
            with contextlib.suppress(RedisError, OSError):
                await release()

    async def ping(self) -> None:
        await self._run(self._client.ping)

    async def wait_subscribed(self, wait_seconds: float | None = None) -> bool:
        """Wait until every subscribed channel is live on the current connection (False on timeout).

        Notices are fire-and-forget: one published before its subscription is live is lost.
        """
        try:
            await asyncio.wait_for(self._ready.wait(), wait_seconds)
        except TimeoutError:
            return False
        return True

    def add_reconnect_hook(self, hook: ReconnectHook) -> None:
        """Call ``hook`` (sync or async) after every (re)connection of the listener, once its
        subscriptions are live: notices sent while it was away are lost, so features resync here."""
        self._reconnect_hooks.append(hook)

    # --- counters ---

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        name = self._key(key)

        async def run() -> int:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incrby(name, amount)
                if ttl_seconds is not None:
                    pipe.pexpire(name, _ttl_ms(ttl_seconds))
                results = await pipe.execute()
            return int(results[0])

        return await self._run(run)

    async def get_int(self, key: str) -> int:
        raw = await self._run(lambda: self._client.get(self._key(key)))
        return int(raw) if raw is not None else 0

    async def hincr(
        self, key: str, amounts: Mapping[str, int], ttl_seconds: float | None = None
    ) -> dict[str, int]:
        name = self._key(key)
        fields = list(amounts)

        async def run() -> dict[str, int]:
            async with self._client.pipeline(transaction=True) as pipe:
                for field in fields:
                    pipe.hincrby(name, field, amounts[field])
                if ttl_seconds is not None:
                    pipe.pexpire(name, _ttl_ms(ttl_seconds))
                results = await pipe.execute()
            return {field: int(value) for field, value in zip(fields, results, strict=False)}

        return await self._run(run) if fields else {}

    async def hincr_once(self, key: str, amounts: Mapping[str, int], writer: str, batch: int) -> bool:
        keys = [self._key(key), self._key(f"batches:{writer}")]
        args: list[str | int] = [key, batch, _ttl_ms(_BATCH_MARKS_TTL_SECONDS)]
        for field, amount in amounts.items():
            args += [field, amount]
        return bool(await self._run(lambda: self._hincr_once_script(keys=keys, args=args)))

    async def hgetall(self, key: str) -> dict[str, int]:
        raw: dict[Any, Any] = await self._run(lambda: self._client.hgetall(self._key(key)))
        return {field.decode(): int(value) for field, value in raw.items()}

    # --- windows ---

    async def window_incr(self, key: str, window: Window, amount: int = 1, now: float | None = None) -> int:
        now = time.time() if now is None else now
        bucket = bucket_of(window, now)
        name = self._window_key(key, window, bucket)

        async def run() -> int:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incrby(name, amount)
                pipe.pexpire(name, self._window_ttl_ms(bucket, now))
                results = await pipe.execute()
            return int(results[0])

        return await self._run(run)

    async def window_get(self, key: str, window: Window, now: float | None = None) -> int:
        now = time.time() if now is None else now
        name = self._window_key(key, window, bucket_of(window, now))
        raw = await self._run(lambda: self._client.get(name))
        return int(raw) if raw is not None else 0

    async def reserve(
        self, reservations: Sequence[Reservation], now: float | None = None
    ) -> ReservationResult:
        now = time.time() if now is None else now
        buckets = [bucket_of(item.window, now) for item in reservations]
        resets = tuple(bucket.reset_seconds(now) for bucket in buckets)
        if not reservations:
            return ReservationResult(True, (), ())
        keys = [
            self._window_key(item.key, item.window, bucket)
            for item, bucket in zip(reservations, buckets, strict=True)
        ]
        args: list[int] = []
        for item, bucket in zip(reservations, buckets, strict=True):
            args += [item.amount, item.limit, self._window_ttl_ms(bucket, now), item.release, item.lease]
        args += [LEASE_MIN_CALLS_LEFT, LEASE_SHARE]
        ok, refused, counts, granted = await self._run(lambda: self._reserve_script(keys=keys, args=args))
        counted = tuple(int(count) for count in counts)
        if ok:
            return ReservationResult(True, counted, resets, granted=tuple(int(units) for units in granted))
        return ReservationResult(False, counted, resets, int(refused) - 1)

    async def window_adjust(self, adjustments: Sequence[WindowAdjustment]) -> None:
        if not adjustments:
            return
        now = time.time()
        keys: list[str] = []
        args: list[int] = []
        for item in adjustments:
            bucket = bucket_of(item.window, item.at)
            keys.append(self._window_key(item.key, item.window, bucket))
            args += [item.amount, self._window_ttl_ms(bucket, now)]
        await self._run(lambda: self._window_adjust_script(keys=keys, args=args))

    # --- records ---

    async def set_record(self, key: str, value: Mapping[str, Any], ttl_seconds: float | None = None) -> None:
        px = None if ttl_seconds is None else _ttl_ms(ttl_seconds)
        await self._run(lambda: self._client.set(self._key(key), encode(value), px=px))

    async def set_record_if_absent(
        self, key: str, value: Mapping[str, Any], ttl_seconds: float | None = None
    ) -> bool:
        px = None if ttl_seconds is None else _ttl_ms(ttl_seconds)
        stored = await self._run(lambda: self._client.set(self._key(key), encode(value), px=px, nx=True))
        return bool(stored)

    async def get_record(self, key: str) -> dict[str, Any] | None:
        raw = await self._run(lambda: self._client.get(self._key(key)))
        return None if raw is None else decode_record(raw)

    async def delete(self, key: str) -> None:
        await self._run(lambda: self._client.delete(self._key(key)))

    # --- versioned maps and record maps ---

    async def put_version(self, key: str, field: str, value: Mapping[str, Any], floor: int = 0) -> int:
        keys = [self._key(f"{key}:versions"), self._key(f"{key}:values")]
        version = await self._run(
            lambda: self._put_version_script(keys=keys, args=[field, encode(value), floor])
        )
        return int(version)

    async def restore_version(self, key: str, field: str, version: int, value: Mapping[str, Any]) -> bool:
        keys = [self._key(f"{key}:versions"), self._key(f"{key}:values")]
        args: list[str | bytes | int] = [field, encode(value), version]
        return bool(await self._run(lambda: self._restore_version_script(keys=keys, args=args)))

    async def versions(self, key: str) -> dict[str, int]:
        raw: dict[Any, Any] = await self._run(lambda: self._client.hgetall(self._key(f"{key}:versions")))
        return {field.decode(): int(version) for field, version in raw.items()}

    async def get_version(self, key: str, field: str) -> tuple[int, dict[str, Any]] | None:
        async def run() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hget(self._key(f"{key}:versions"), field)
                pipe.hget(self._key(f"{key}:values"), field)
                return list(await pipe.execute())

        version, value = await self._run(run)
        if version is None or value is None:
            return None
        return int(version), decode_record(value) or {}

    async def put_entry(self, key: str, field: str, value: Mapping[str, Any]) -> None:
        await self._run(lambda: self._client.hset(self._key(key), field, encode(value)))

    async def entries(self, key: str) -> dict[str, dict[str, Any]]:
        raw: dict[Any, Any] = await self._run(lambda: self._client.hgetall(self._key(key)))
        return {field.decode(): decode_record(value) or {} for field, value in raw.items()}

    async def delete_entries(self, key: str, fields: Sequence[str]) -> None:
        if fields:
            await self._run(lambda: self._client.hdel(self._key(key), *fields))

    # --- notices ---

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        await self._run(lambda: self._client.publish(self._key(channel), encode(message)))

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Register ``handler``; the listener subscribes a new channel within ~``_POLL_SECONDS``."""
        self._handlers.setdefault(channel, []).append(handler)
        if self._session is None or channel not in self._session.confirmed:
            self._ready.clear()

    # --- internals: calls ---

    def _key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def _window_key(self, key: str, window: Window, bucket: Bucket) -> str:
        return f"{self._prefix}{key}:{window.value}:{bucket.id}"

    @staticmethod
    def _window_ttl_ms(bucket: Bucket, now: float) -> int:
        """A bucket outlives its window by a little: other workers' clocks may lag a bit."""
        return _ttl_ms(bucket.reset_seconds(now) + WINDOW_GRACE_SECONDS)

    async def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call within the deadline, turning every failure into ``StateUnavailable``."""
        try:
            async with asyncio.timeout(self._deadline):
                return await call()
        except (RedisError, OSError, TimeoutError) as exc:
            raise _unavailable(exc) from exc

    # --- internals: the listener ---

    async def _listen_forever(self) -> None:
        """Keep one pub/sub connection alive for as long as the store is open."""
        delay = _BACKOFF_FIRST_SECONDS
        failures = 0
        while not self._closing:
            try:
                await self._listen_once()
            except Exception as exc:  # whatever broke, the answer is the same: reconnect
                if self._session_was_live():
                    delay, failures = _BACKOFF_FIRST_SECONDS, 0
                failures += 1
                self._log_lost(exc, first=failures == 1)
            finally:
                self._session = None
            if not self._closing:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_SECONDS)

    @staticmethod
    def _log_lost(exc: Exception, *, first: bool) -> None:
        """One warning per outage (retries go to debug); a non-Redis error gets its traceback."""
        if not isinstance(exc, RedisError | OSError | TimeoutError):
            logger.exception("state notices: listener failed unexpectedly, reconnecting")
            return
        level = logging.WARNING if first else logging.DEBUG
        logger.log(level, "state notices: connection lost (%s), reconnecting", _unavailable(exc))

    async def _stop_listener(self) -> None:
        """Stop the listener for good. The flag ends its loops; cancelling is repeated because a
        cancellation can be swallowed inside redis-py (``asyncio.wait_for`` on Python 3.11)."""
        task, self._listener = self._listener, None
        if task is None:
            return
        self._closing = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("state notices: listener ended with %r", task.exception())

    def _session_was_live(self) -> bool:
        return self._session is not None and self._session.hooks_done

    async def _listen_once(self) -> None:
        """One connection: subscribe, confirm, run the hooks, then pump notices until it fails."""
        loop = asyncio.get_running_loop()
        session = self._session = _Session(loop.time())
        pubsub = self._client.pubsub()
        try:
            async with asyncio.timeout(self._deadline):
                await self._client.ping()  # fails fast when Redis is away; initializes a cluster client
                await pubsub.ping()  # opens the pub/sub connection
            if pubsub.connection is not None:
                pubsub.connection.register_connect_callback(session.on_connect)
            while not (session.dropped or self._closing):
                await self._subscribe_new(pubsub, session)
                message = await pubsub.get_message(timeout=_POLL_SECONDS)
                await self._keep_alive(pubsub, session, heard=message is not None, now=loop.time())
                if message is not None:
                    await self._handle(message, session)
                await self._settle(session)
            if session.dropped:
                raise RedisConnectionError("pub/sub connection was re-established underneath")
        finally:
            self._ready.clear()
            if pubsub.connection is not None:
                pubsub.connection.deregister_connect_callback(session.on_connect)
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _subscribe_new(self, pubsub: Any, session: _Session) -> None:
        fresh = [channel for channel in self._handlers if channel not in session.requested]
        if fresh:
            await pubsub.subscribe(*(self._key(channel) for channel in fresh))
            session.requested.update(fresh)

    async def _keep_alive(self, pubsub: Any, session: _Session, *, heard: bool, now: float) -> None:
        """Ping an idle connection; a connection that stays silent through pings is dead."""
        if heard:
            session.last_heard = now
            return
        if now - session.last_heard > _SILENT_LIMIT_SECONDS:
            raise RedisConnectionError("pub/sub connection went silent")
        if now - max(session.last_heard, session.last_ping) > _KEEPALIVE_SECONDS:
            session.last_ping = now
            await pubsub.ping()

    async def _handle(self, message: dict[str, Any], session: _Session) -> None:
        kind = message.get("type")
        channel = self._channel_name(message.get("channel"))
        if channel is None:
            return  # a pong
        if kind == "subscribe":
            session.confirmed.add(channel)
        elif kind == "message":
            await deliver(self._handlers.get(channel, ()), message["data"], channel)

    def _channel_name(self, raw: bytes | str | None) -> str | None:
        if raw is None:
            return None
        name = raw.decode() if isinstance(raw, bytes) else raw
        return name.removeprefix(self._prefix)

    async def _settle(self, session: _Session) -> None:
        """Once every channel is confirmed: mark ready and, first time on this connection, resync."""
        if not session.confirmed.issuperset(self._handlers):
            return
        self._ready.set()
        if not session.hooks_done:
            session.hooks_done = True
            logger.info("state notices: listening on %d channel(s)", len(session.confirmed))
            await run_hooks(self._reconnect_hooks, "state reconnect")


# --- construction ------------------------------------------------------------------------------


def _retry_dropped_connection() -> Retry:
    """One immediate retry on a connection error only: a pooled connection Redis closed (``CLIENT
    KILL``, a restart) then costs nothing, while a dead Redis fails the retry's connect at once.
    Timeouts are not retried: on a frozen Redis that would only double the wait."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def client_options(timeout_seconds: float) -> dict[str, Any]:
    """Connection options for every RouteIQ Redis client (plain, Sentinel)."""
    return {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "retry": _retry_dropped_connection(),
        "health_check_interval": HEALTH_CHECK_SECONDS,
    }


def _sentinel_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"sentinel address must be host:port, got {text!r}")
    return host, int(port)


def _cluster_prefix(key_prefix: str) -> str:
    """In a cluster, a reservation's keys must share a slot: put the prefix in a hash tag."""
    if "{" in key_prefix:
        return key_prefix
    return "{" + key_prefix.rstrip(":") + "}:"


def _sentinel_store(
    url: str | None, sentinels: list[str], master: str, key_prefix: str, timeouts: dict[str, Any]
) -> RedisStateStore:
    # Only credentials and the database come from the URL: the master's address comes from Sentinel.
    from_url = parse_url(url) if url else {}
    auth: dict[str, Any] = {
        key: value for key, value in from_url.items() if key in ("username", "password", "db")
    }
    # Every new master connection first asks a Sentinel where the master is: those clients need the
    # same room, or a burst of connections fails with MasterNotFoundError.
    sentinel_options = {key: value for key, value in timeouts.items() if key.startswith("socket_")}
    sentinel_options["max_connections"] = MAX_CONNECTIONS
    addresses = [_sentinel_address(text) for text in sentinels]
    sentinel = Sentinel(addresses, sentinel_kwargs=sentinel_options, **timeouts)
    client = sentinel.master_for(master, **auth, **timeouts)
    closers = [node.aclose for node in sentinel.sentinels]
    timeout = timeouts["socket_timeout"]
    return RedisStateStore(client, key_prefix=key_prefix, timeout_seconds=timeout, on_close=closers)


def create_redis_store(
    url: str | None,
    *,
    sentinels: Sequence[str] = (),
    sentinel_master: str | None = None,
    cluster: bool = False,
    key_prefix: str = "routeiq:",
    timeout_seconds: float = 0.5,
) -> RedisStateStore:
    """Build a (not yet started) store for one server (``url``), Sentinel, or Cluster.

    Sentinel: ``sentinels`` are "host:port" strings and ``sentinel_master`` the master's name (the
    URL, if given, only supplies credentials and db). Cluster: ``url`` names any node; the key
    prefix is wrapped in a hash tag (``{routeiq}:``) so multi-key reservations stay in one slot.
    """
    timeouts: dict[str, Any] = {"socket_timeout": timeout_seconds, "socket_connect_timeout": timeout_seconds}
    if sentinels:
        if not sentinel_master:
            raise ValueError("sentinel mode needs sentinel_master (the monitored master's name)")
        # (Sentinel's pool cannot block; at least it gets the same room as the plain one.)
        options = {**client_options(timeout_seconds), "max_connections": MAX_CONNECTIONS}
        return _sentinel_store(url, list(sentinels), sentinel_master, key_prefix, options)
    if not url:
        raise ValueError("a Redis URL is required (or sentinels with a master name)")
    if cluster:
        # One retry without backoff lets the cluster client follow a failover or a slot move.
        client: RedisClient = RedisCluster.from_url(url, retry=Retry(NoBackoff(), 1), **timeouts)
        prefix = _cluster_prefix(key_prefix)
        return RedisStateStore(client, key_prefix=prefix, timeout_seconds=timeout_seconds)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=timeout_seconds, **client_options(timeout_seconds)
    )
    client = Redis.from_pool(pool)
    return RedisStateStore(client, key_prefix=key_prefix, timeout_seconds=timeout_seconds)
