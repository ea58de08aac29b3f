"""The one settings model.

Every knob RouteIQ reads is a field here. Values come from, lowest precedence first: the defaults
below, the YAML config file (LiteLLM-shaped top-level sections plus the ``routeiq:`` section), the
``ROUTEIQ_*`` environment (``__`` separates nested keys), then command-line flags. ``config.py``
does the loading; ``docs/configuration.md`` is generated from this module (``make docs``) and a test
checks it is current.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from routeiq.governance.limits import QuotaSettings
from routeiq.routing.catalogue import (
    CASCADE_STRATEGY,
    DEFAULT_STRATEGY,
    LEARNED_ALGORITHMS,
    TIERS,
    find_strategy,
    strategy_names,
)


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.75) -> str:
    """`` (did you mean 'x'?)`` for the nearest choice, or ``""`` when none is near."""
    choices = list(choices)
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    if not matches:
        lowered = {choice.lower(): choice for choice in choices}
        matches = [lowered[word.lower()]] if word.lower() in lowered else []
    return f" (did you mean {matches[0]!r}?)" if matches else ""


class LiteLLMParams(BaseModel):
    """A deployment's ``litellm_params``. Only what RouteIQ reads is typed; the rest goes to LiteLLM."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, description="LiteLLM model string, `provider/model`.")
    api_base: str | None = Field(default=None, description="Upstream base URL, usually ending in /v1.")
    api_key: str | None = Field(default=None, description="Upstream credential; use os.environ/NAME.")
    weight: float = Field(default=1.0, ge=0, description="Relative share for weighted strategies.")
    timeout: float | None = Field(default=None, gt=0, description="Per-deployment timeout (seconds).")


class ModelInfo(BaseModel):
    """A deployment's ``model_info``. ``id`` and ``tier`` are RouteIQ's; the prices and capabilities
    below are LiteLLM's names that RouteIQ also reads, so they are typed here; other keys go to LiteLLM."""

    model_config = ConfigDict(extra="allow")

    id: str | None = Field(
        default=None, min_length=1, description="Deployment id; defaults to `<group>-<n>`."
    )
    tier: str | None = Field(default=None, description=f"Capability tier: one of {', '.join(TIERS)}.")
    input_cost_per_token: float | None = Field(
        default=None, ge=0, description="USD per prompt token (else LiteLLM's price list)."
    )
    output_cost_per_token: float | None = Field(
        default=None, ge=0, description="USD per completion token (else LiteLLM's price list)."
    )
    max_input_tokens: int | None = Field(
        default=None, ge=1, description="Context window; longer requests skip the deployment."
    )
    supports_vision: bool | None = Field(default=None, description="Takes image inputs.")
    supports_function_calling: bool | None = Field(default=None, description="Takes `tools`.")
    responses_api: bool | None = Field(
        default=None,
        description="Serves OpenAI's Responses API itself, so `/v1/responses` calls are forwarded as sent "
        "(default: only `api.openai.com`); otherwise they are translated to chat completions.",
    )

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, value: str | None) -> str | None:
        # A misspelt tier used to fall back to the default tier silently, moving the deployment.
        if value is not None and value not in TIERS:
            raise ValueError(f"unknown tier {value!r}{did_you_mean(value, TIERS)}; tiers: {', '.join(TIERS)}")
        return value

    @model_validator(mode="after")
    def _no_near_miss_of_routeiq_keys(self) -> ModelInfo:
        # Extra keys go to LiteLLM; one that looks like RouteIQ's own (`teir`) is a typo, not LiteLLM's.
        # (`routeiq.routing.deployments.config_key_problems` checks the rest against LiteLLM's names.)
        for key in self.model_extra or {}:
            hint = did_you_mean(key, ("id", "tier"), cutoff=0.6)
            if hint:
                raise ValueError(f"unknown key {key!r}{hint}")
        return self


class DeploymentConfig(BaseModel):
    """One ``model_list`` entry: ``model_name`` is the routing group clients ask for."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(min_length=1, description="The routing group this deployment serves.")
    litellm_params: LiteLLMParams = Field(description="How to call the deployment.")
    model_info: ModelInfo = Field(default_factory=ModelInfo, description="What RouteIQ knows about it.")


class RouterSettings(BaseModel):
    """``router_settings``: how a group's deployments are picked, retried and cooled down."""

    model_config = ConfigDict(extra="forbid")

    routing_strategy: str = Field(
        default=DEFAULT_STRATEGY,
        description="Strategy for every group without its own (`routeiq strategies`).",
    )
    group_strategies: dict[str, str] = Field(
        default_factory=dict,
        description="Per-group strategy, overriding routing_strategy: {group: strategy}.",
    )
    num_retries: int = Field(
        default=1, ge=0, le=10, description="Extra attempts within a group, each on another deployment."
    )
    fallbacks: list[dict[str, list[str]]] = Field(
        default_factory=list, description="Groups to try, in order, when a group is exhausted."
    )
    allowed_fails: int = Field(
        default=0, ge=0, description="Failures a deployment may have in a minute before cooldown."
    )
    cooldown_time: float = Field(default=30.0, gt=0, description="Seconds a failed deployment rests.")

    @field_validator("routing_strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in strategy_names():
            raise ValueError(f"unknown routing strategy {value!r}; valid: {strategy_names()}")
        return value

    @field_validator("group_strategies")
    @classmethod
    def _known_group_strategies(cls, value: dict[str, str]) -> dict[str, str]:
        for group, name in value.items():
            if name not in strategy_names():
                raise ValueError(
                    f"group {group!r}: unknown routing strategy {name!r}; valid: {strategy_names()}"
                )
        return value


class LiteLLMSettings(BaseModel):
    """``litellm_settings``: defaults for every LiteLLM call, kept on this app's Router only."""

    model_config = ConfigDict(extra="forbid")

    drop_params: bool = Field(default=False, description="Drop params a provider does not support.")
    modify_params: bool = Field(default=False, description="Let LiteLLM adjust params for a provider.")


class CircuitBreakerSettings(BaseModel):
    """Per-deployment circuit breakers, shared by every worker and replica through the StateStore."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Take deployments that keep failing out of rotation.")
    consecutive_failures: int = Field(default=5, ge=1, description="Failures in a row that open the breaker.")
    failure_rate: float = Field(
        default=0.5, gt=0, le=1, description="Failure share within the current minute that opens it..."
    )
    min_requests: int = Field(default=20, ge=1, description="...once the minute has seen this many calls.")
    open_seconds: float = Field(
        default=30.0, gt=0, description="Time open before one half-open probe is let through."
    )


class StateFailureModes(BaseModel):
    """What each feature does while Redis is unreachable: `open` keeps going on per-process state,
    `closed` refuses what needs the shared state."""

    model_config = ConfigDict(extra="forbid")

    breakers: Literal["open", "closed"] = Field(default="open", description="Circuit breaker state.")
    routing: Literal["open", "closed"] = Field(
        default="open",
        description="Strategy changes: `open` applies one made meanwhile to the worker that took it "
        "(until Redis is back), `closed` refuses it with 503.",
    )
    affinity: Literal["open", "closed"] = Field(default="open", description="Session tier floors.")
    quotas: Literal["open", "closed"] = Field(
        default="open", description="Quota windows (`open`: each process counts alone meanwhile)."
    )


class PolicySettings(BaseModel):
    """The policy engine: declarative allow/deny rules evaluated after authentication."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = Field(default=None, description="YAML file of policy rules; unset: no policy layer.")
    default_action: Literal["allow", "deny"] = Field(
        default="allow", description="What happens when no rule matches."
    )
    failure_mode: Literal["closed", "open"] = Field(
        default="closed", description="If evaluating the rules fails: `closed` denies, `open` allows."
    )
    reload_interval_seconds: float = Field(
        default=2.0, ge=0, description="How often the file is checked for changes (0: never)."
    )


class AdminSettings(BaseModel):
    """The control plane (`/admin`) and the admin UI."""

    model_config = ConfigDict(extra="forbid")

    metrics_stream_seconds: float = Field(
        default=2.0, ge=0.5, le=60, description="How often `/admin/metrics/stream` sends the metrics."
    )
    login_failures_per_minute: int = Field(
        default=10,
        ge=1,
        description="Failed `POST /admin/auth/verify` attempts a source address may make per minute "
        "(cluster-wide) before it gets 429.",
    )


class PluginConfig(BaseModel):
    """One enabled plugin: a built-in name or a third-party one found through an entry point."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Plugin name (`routeiq.plugins` entry point or built-in).")
    enabled: bool = Field(default=True, description="Load it at all.")
    priority: int | None = Field(default=None, description="Lower runs first; unset: the plugin's own.")
    timeout_ms: int = Field(default=1000, ge=1, description="Longest a hook may take.")
    failure_mode: Literal["continue", "abort"] = Field(
        default="continue",
        description="When a hook fails or times out: `continue` without it, or `abort` the request (503).",
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="The plugin's own settings.")


class CascadeVerifierSettings(BaseModel):
    """How a cascade judges an answer: a score in 0..1, higher = more likely right."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["scorer", "judge", "logprobs"] = Field(
        description="`scorer`: the trained answer verifier (`routeiq train --algo verifier`); `judge`: a "
        "call to the routing group in `group`, whose answer must be exactly a number 0..1 (`format: "
        "score`) or YES/NO (`format: yes_no`); `logprobs`: the cheap answer's mean token probability "
        "(the cheap call asks for `logprobs`)."
    )
    artifact: str | None = Field(
        default=None, description="scorer: the verifier artifact's directory (sha256, and HMAC if signed)."
    )
    group: str | None = Field(default=None, description="judge: the routing group asked to judge.")
    format: Literal["score", "yes_no"] = Field(default="score", description="judge: the answer it must give.")
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Past this the verifier counts as failed: the request escalates.",
    )


class CascadeSettings(BaseModel):
    """One group's cascade: its tiers answer in order until the verifier accepts an answer."""

    model_config = ConfigDict(extra="forbid")

    tiers: list[str] = Field(
        min_length=2,
        description="Steps, cheapest first: each a tier (the group's deployments at that tier) or a "
        "deployment id of the group. The last step's answer is served unverified.",
    )
    verifier: CascadeVerifierSettings = Field(description="What scores each step's answer but the last.")
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="An answer scoring below this escalates to the next step."
    )
    streaming: Literal["buffer", "bypass"] = Field(
        default="buffer",
        description="A streamed request: `buffer` (verify the whole answer, then stream the final one: the "
        "first byte waits for every call) or `bypass` (no cascade: the cheapest deployment of the lowest "
        "tier answers, streamed).",
    )


DATABASE_SCHEMES = ("postgresql://", "postgres://", "postgresql+", "sqlite:///")
REDIS_SCHEMES = ("redis", "rediss", "unix")


def _without_secret(text: str, url: str) -> str:
    return text.replace(url, "<the URL>")


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """All of RouteIQ's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="ROUTEIQ_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    # Server
    host: str = Field(default="0.0.0.0", description="Interface to listen on.")
    port: int = Field(default=4000, ge=1, le=65535, description="TCP port to listen on.")
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes (gunicorn when > 1).")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log verbosity."
    )
    access_log: bool = Field(default=False, description="Log every request line (costs throughput).")

    # Auth
    master_key: SecretStr | None = Field(
        default=None, description="Bearer key for the data plane; unset leaves it open (with a warning)."
    )
    admin_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Comma-separated keys for /admin/*; none closes the control plane."
    )
    metrics_auth: Literal["open", "admin", "data"] = Field(
        default="open",
        description="Who may read /metrics: `open` (no key: Prometheus scraping inside the cluster), "
        "`admin` (an admin key), `data` (an admin key or any key the data plane accepts).",
    )
    admin: AdminSettings = Field(
        default_factory=AdminSettings, description="The control plane and admin UI (next table)."
    )

    # Protection
    max_concurrent_requests: int = Field(
        default=1024, ge=1, description="In-flight requests per worker before shedding with 503."
    )
    max_request_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest accepted request body (413 above it)."
    )
    shed_retry_after_seconds: int = Field(
        default=1, ge=1, le=120, description="retry-after sent with a shed 503."
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS (`*` for any)."
    )

    queue_timeout_ms: int = Field(
        default=0,
        ge=0,
        description="At capacity, wait this long for a slot before shedding (0: shed at once).",
    )
    queue_max_depth: int = Field(default=256, ge=0, description="Requests that may wait for a slot at once.")
    drain_timeout_seconds: float = Field(
        default=30.0, ge=0, description="On SIGTERM, how long in-flight requests and streams may run on."
    )

    # Shared state
    redis_url: str | None = Field(
        default=None, description="Redis for state shared by workers and replicas; unset: in-process state."
    )
    redis_sentinels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated Sentinel host:port list (instead of redis_url)."
    )
    redis_sentinel_master: str | None = Field(default=None, description="Sentinel master name.")
    redis_cluster: bool = Field(default=False, description="Treat redis_url as a Redis Cluster node.")
    redis_key_prefix: str = Field(default="routeiq:", description="Prefix of every key RouteIQ writes.")
    redis_timeout_seconds: float = Field(
        default=0.5, gt=0, description="Redis socket timeout; past it a call counts as Redis being down."
    )
    state_failure_mode: StateFailureModes = Field(default_factory=StateFailureModes)
    circuit_breaker: CircuitBreakerSettings = Field(default_factory=CircuitBreakerSettings)

    # Durable records (virtual keys, audit, spend) and governance
    data_dir: str = Field(default=".routeiq", description="Where the embedded SQLite database lives.")
    database_url: SecretStr | None = Field(
        default=None,
        description="`postgresql://...` for PostgreSQL (or `sqlite:///path`); unset: SQLite in data_dir.",
    )
    database_migrate_on_startup: bool = Field(
        default=True, description="Apply schema migrations at startup (else run `routeiq db upgrade`)."
    )
    log_queue_size: int = Field(
        default=10_000, ge=1, description="Spend/decision log records queued (per log) before drops."
    )
    audit_failure_mode: Literal["closed", "open"] = Field(
        default="closed",
        description="If an audit record cannot be written: `closed` refuses the action (503).",
    )
    key_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a worker trusts a looked-up virtual key (changes are announced at once).",
    )
    policy: PolicySettings = Field(default_factory=PolicySettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    plugins: list[PluginConfig] = Field(default_factory=list, description="Plugins in the request path.")

    decision_log: str = Field(
        default="stderr", description="Where routing decision events go: `stderr`, `off`, or a file path."
    )
    decision_retention_days: float = Field(
        default=14.0,
        ge=0,
        description="How long the decision store (`/admin/routing-decisions`, one record per model "
        "request, in the database) keeps records; older ones are deleted in the background. 0: no "
        "records are stored.",
    )
    feedback_window_days: float = Field(
        default=7.0,
        gt=0,
        description="How long after a request `POST /v1/routeiq/feedback` accepts feedback on it "
        "(the request's decision record must still be kept: see `decision_retention_days`).",
    )
    log_prompts: bool = Field(
        default=False,
        description="Store the prompt text the router read (the latest user turn, first 4000 "
        "characters) in each decision record. Off: records never hold prompt text.",
    )
    trace_message_content: bool = Field(
        default=False,
        description="Put prompt and completion text on OpenTelemetry spans (`gen_ai.input.messages`, "
        "`gen_ai.output.messages`). Off: spans carry models, tokens and routing, never text. Tracing "
        "itself is turned on by the standard `OTEL_*` variables (docs/deploy.md).",
    )

    config_hot_reload: bool = Field(
        default=False,
        description="Watch the config file and apply it to every worker and replica when it changes "
        "(as `PUT /admin/config` does; an invalid file is refused and logged). See docs/config-apply.md.",
    )

    # Executors
    passthrough: Literal["auto", "off"] = Field(
        default="auto", description="`auto` forwards OpenAI-wire deployments as bytes; `off` uses LiteLLM."
    )
    request_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Upstream timeout: whole call, or between stream chunks."
    )
    connect_timeout_seconds: float = Field(default=10.0, gt=0, description="Upstream connect timeout.")

    # Routing
    profile_group: str = Field(
        default="auto", description="The group served when a client asks for a profile name as its model."
    )
    model_aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Client model ids served by a routing group or profile, for clients that pin model ids "
        "(Claude Code, Codex): `{claude-sonnet-4-5: auto, claude-haiku-4-5: eco}`.",
    )
    session_ttl_seconds: float = Field(
        default=3600.0, gt=0, description="How long a session's tier floor lives after its last turn."
    )
    classifier_dir: str | None = Field(
        default=None, description="Classifier artifacts to use instead of the shipped data/classifier."
    )
    learned_routers: dict[str, str] = Field(
        default_factory=dict, description="Trained router artifacts by algorithm: {knn: DIR, ...}."
    )
    router_hmac_key: SecretStr | None = Field(
        default=None, description="If set, trained router artifacts must carry a valid HMAC signature."
    )
    cascades: dict[str, CascadeSettings] = Field(
        default_factory=dict,
        description=f"Per group, the `{CASCADE_STRATEGY}` strategy: `{{group: {{tiers, verifier, threshold, "
        "streaming}}` (tables below; docs/routing.md, Cascade).",
    )

    # LiteLLM-shaped sections of the config file
    model_list: list[DeploymentConfig] = Field(default_factory=list)
    router_settings: RouterSettings = Field(default_factory=RouterSettings)
    litellm_settings: LiteLLMSettings = Field(default_factory=LiteLLMSettings)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(DATABASE_SCHEMES):
            raise ValueError(f"unsupported database URL scheme; use one of {list(DATABASE_SCHEMES)}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        # Checked here, so a typo is a config error naming the setting instead of a worker crash.
        # The URL is never echoed: it may hold a password.
        if value is None:
            return value
        scheme, sep, _ = value.partition("://")
        if not sep or scheme not in REDIS_SCHEMES:
            raise ValueError(f"not a Redis URL: expected {' or '.join(s + '://...' for s in REDIS_SCHEMES)}")
        from redis.connection import parse_url  # what the store will call with it

        try:
            parse_url(value)
        except ValueError as error:
            raise ValueError(f"not a valid Redis URL ({_without_secret(str(error), value)})") from None
        if scheme != "unix" and not urlsplit(value).hostname:
            raise ValueError("not a valid Redis URL: no host")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"sentinel address must be host:port, got {address!r}")
        return value

    @field_validator("admin_keys", "cors_allow_origins", "redis_sentinels", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_commas(value)

    @model_validator(mode="after")
    def _check_groups(self) -> Settings:
        # Every problem at once (one per line), so a user fixes them in one pass, not one per run.
        problems = []
        if self.redis_sentinels and not self.redis_sentinel_master:
            problems.append("redis_sentinels needs redis_sentinel_master (the monitored master's name)")
        groups = {entry.model_name for entry in self.model_list}
        ids: set[str] = set()
        for entry in self.model_list:
            if entry.model_info.id is not None:
                if entry.model_info.id in ids:
                    problems.append(f"model_list: duplicate model_info.id {entry.model_info.id!r}")
                ids.add(entry.model_info.id)
        for group in self.router_settings.group_strategies:
            if group not in groups:
                hint = did_you_mean(group, groups)
                problems.append(f"router_settings.group_strategies names unknown group {group!r}{hint}")
        unknown_algos = sorted(set(self.learned_routers) - set(LEARNED_ALGORITHMS))
        if unknown_algos:
            problems.append(
                f"learned_routers: unknown algorithm(s) {unknown_algos}; valid: {list(LEARNED_ALGORITHMS)}"
            )
        used = {self.router_settings.routing_strategy, *self.router_settings.group_strategies.values()}
        for name in sorted(used):
            spec = find_strategy(name)  # (unknown names were refused by RouterSettings already)
            if spec is not None and spec.algorithm is not None and spec.algorithm not in self.learned_routers:
                problems.append(spec.missing_artifact())
        problems += self._alias_problems(groups)
        problems += self._cascade_problems(groups)
        unknown_quota_groups = sorted(set(self.quotas.groups) - groups)
        if unknown_quota_groups:
            problems.append(f"quotas.groups names unknown group(s) {unknown_quota_groups}")
        for rule in self.router_settings.fallbacks:
            for source, targets in rule.items():
                unknown = [name for name in (source, *targets) if name not in groups]
                if unknown:
                    problems.append(
                        f"router_settings.fallbacks names unknown group(s) {unknown}; known: {sorted(groups)}"
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _alias_problems(self, groups: set[str]) -> list[str]:
        from routeiq.routing.profiles import PROFILES  # (routing imports settings' types)

        problems = []
        for alias, target in self.model_aliases.items():
            if alias in groups:
                problems.append(f"model_aliases: {alias!r} is a group's own name; an alias cannot hide it")
            elif target not in groups and target.lower() not in PROFILES:
                hint = did_you_mean(target, [*groups, *PROFILES])
                problems.append(
                    f"model_aliases.{alias} names {target!r}, which is neither a group nor a profile{hint}"
                )
        return problems

    def _cascade_problems(self, groups: set[str]) -> list[str]:
        from routeiq.routing.deployments import deployment_ids  # (routing imports settings' types)

        problems = []
        strategies = self.router_settings.group_strategies
        if self.router_settings.routing_strategy == CASCADE_STRATEGY:
            problems.append(
                f"router_settings.routing_strategy: {CASCADE_STRATEGY} is set per group, in routeiq.cascades"
            )
        for group, name in strategies.items():
            if name == CASCADE_STRATEGY and group not in self.cascades:
                key = f"router_settings.group_strategies.{group}"
                problems.append(f"{key}: {CASCADE_STRATEGY} needs routeiq.cascades.{group}")
        if not self.cascades:
            return problems
        members: dict[str, list[tuple[str, str | None]]] = {}
        for entry, deployment_id in zip(self.model_list, deployment_ids(self.model_list), strict=True):
            members.setdefault(entry.model_name, []).append((deployment_id, entry.model_info.tier))
        for group, cascade in self.cascades.items():
            key = f"cascades.{group}"
            if group not in groups:
                problems.append(f"{key}: unknown group {group!r}{did_you_mean(group, groups)}")
                continue
            if strategies.get(group, CASCADE_STRATEGY) != CASCADE_STRATEGY:
                problems.append(
                    f"{key}: router_settings.group_strategies.{group} is {strategies[group]!r}; "
                    f"a cascade group's strategy is {CASCADE_STRATEGY}"
                )
            ids = {deployment_id for deployment_id, _ in members[group]}
            tiers = {tier for _, tier in members[group] if tier is not None}
            for step in cascade.tiers:
                if step not in ids and step not in tiers:
                    problems.append(
                        f"{key}.tiers: {step!r} is neither a tier of group {group!r} ({sorted(tiers)}) "
                        f"nor one of its deployment ids ({sorted(ids)})"
                    )
            if len(set(cascade.tiers)) != len(cascade.tiers):
                problems.append(f"{key}.tiers: a step is named twice")
            problems += _verifier_problems(f"{key}.verifier", cascade.verifier, group, groups)
        return problems

    def group_strategy_names(self) -> dict[str, str]:
        """Each group's configured strategy: ``group_strategies`` and every cascade group."""
        return {**dict.fromkeys(self.cascades, CASCADE_STRATEGY), **self.router_settings.group_strategies}

    def fallbacks_for(self, group: str) -> list[str]:
        for rule in self.router_settings.fallbacks:
            if group in rule:
                return rule[group]
        return []


def _verifier_problems(
    key: str, verifier: CascadeVerifierSettings, group: str, groups: set[str]
) -> list[str]:
    problems = []
    if verifier.kind == "scorer" and not verifier.artifact:
        problems.append(f"{key}.artifact: the scorer needs its artifact (routeiq train --algo verifier)")
    elif verifier.kind == "scorer" and not (Path(str(verifier.artifact)) / "manifest.json").is_file():
        # (its hashes and arrays are checked when the runtime loads it)
        problems.append(f"{key}.artifact: {verifier.artifact!r} holds no verifier artifact (manifest.json)")
    if verifier.kind != "scorer" and verifier.artifact:
        problems.append(f"{key}.artifact: only the scorer reads an artifact (kind is {verifier.kind})")
    if verifier.kind == "judge":
        if not verifier.group:
            problems.append(f"{key}.group: the judge needs the routing group that judges")
        elif verifier.group not in groups:
            problems.append(
                f"{key}.group: unknown group {verifier.group!r}{did_you_mean(verifier.group, groups)}"
            )
        elif verifier.group == group:
            problems.append(f"{key}.group: a group cannot judge its own cascade ({group!r})")
    elif verifier.group:
        problems.append(f"{key}.group: only the judge calls a group (kind is {verifier.kind})")
    return problems
