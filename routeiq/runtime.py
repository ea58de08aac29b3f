"""Everything a request needs, built once in the app's lifespan and closed there.

The app's ``RuntimeHandle`` holds it (``routeiq.runtime_handle``); nothing here is module-level, so
two apps in one process share nothing. Importing this module imports LiteLLM (seconds), which is why
the CLI imports it lazily.
"""

from __future__ import annotations

import logging
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import litellm
from litellm import Router

from routeiq.executors.attempts import Dispatcher
from routeiq.executors.litellm_router import LiteLLMExecutor
from routeiq.executors.passthrough import PassthroughExecutor
from routeiq.experiments.live import Experiments
from routeiq.governance.admin_login import AdminLogin
from routeiq.governance.audit import AuditTrail
from routeiq.governance.keys import VirtualKeys
from routeiq.governance.policy import PolicyEngine, build_policy_engine
from routeiq.governance.quota import Price, PriceBook, Quotas
from routeiq.observability.cluster_metrics import ClusterMetrics
from routeiq.observability.cluster_stats import ClusterStats
from routeiq.observability.decision_log import DecisionLog
from routeiq.observability.metrics import Metrics
from routeiq.observability.tracing import Tracing
from routeiq.plugins.base import PluginServices
from routeiq.plugins.manager import PluginManager
from routeiq.resilience.breaker import CircuitBreakers
from routeiq.resilience.traffic import TrafficGate
from routeiq.routing.active import ActiveStrategy
from routeiq.routing.affinity import SessionAffinity
from routeiq.routing.cascade import build_plans
from routeiq.routing.deployments import DeploymentTable, litellm_model_list
from routeiq.routing.feedback import RoutingFeedback
from routeiq.routing.litellm_hook import LiteLLMRoutingHook
from routeiq.routing.models import RouterReloads, RoutingModels, load_routing_models
from routeiq.routing.picker import Picker
from routeiq.routing.registry import StrategyDeps, create_strategy
from routeiq.settings import Settings
from routeiq.state.factory import StateStores, build_state_stores
from routeiq.store.audit import AuditRepository
from routeiq.store.database import Database, StoreUnavailable
from routeiq.store.decisions import DecisionRepository, DecisionRetention
from routeiq.store.experiments import ExperimentRepository, FeedbackRepository
from routeiq.store.keys import KeyRepository
from routeiq.store.log_writer import LogWriter
from routeiq.store.records import DecisionRecord, SpendRecord
from routeiq.store.spend import SpendRepository

logger = logging.getLogger("routeiq")

SUBSCRIBE_WAIT_SECONDS = 3.0


@dataclass
class Runtime:
    settings: Settings
    deployments: DeploymentTable
    router: Any  # litellm.Router (a facade LiteLLM does not type for mypy)
    picker: Picker
    http: aiohttp.ClientSession
    dispatcher: Dispatcher
    state: StateStores
    breakers: CircuitBreakers | None
    strategy: ActiveStrategy
    models: RoutingModels
    reloads: RouterReloads
    stats: ClusterStats
    cluster_metrics: ClusterMetrics  # the dashboard's numbers (GET /admin/metrics)
    decisions: DecisionLog
    metrics: Metrics
    policy: PolicyEngine | None  # None: no policy file, no policy layer
    quotas: Quotas
    started_at: int
    database: Database
    keys: VirtualKeys
    audit: AuditTrail
    audit_log: AuditRepository
    admin_login: AdminLogin
    spend_log: LogWriter[SpendRecord]
    spend: SpendRepository
    plugins: PluginManager
    decision_records: DecisionRepository
    decision_store: LogWriter[DecisionRecord] | None  # None: decision_retention_days is 0
    experiments: Experiments  # A/B tests between routing strategies (GET /admin/experiments)

    opened: AsyncExitStack = field(repr=False)  # what build_runtime opened and started

    async def close(self) -> None:
        """Close what was opened, in reverse (see ``_open``)."""
        await self.opened.aclose()


def build_router(settings: Settings) -> Any:
    """A Router that does no retries or fallbacks of its own: the dispatcher does them for both
    executors. With Redis configured its cooldowns and usage counters are shared too."""
    router_settings = settings.router_settings
    return Router(
        model_list=litellm_model_list(settings.model_list),
        num_retries=0,
        allowed_fails=router_settings.allowed_fails,
        cooldown_time=router_settings.cooldown_time,
        timeout=settings.request_timeout_seconds,
        default_litellm_params=settings.litellm_settings.model_dump(),
        redis_url=settings.redis_url,
        # LiteLLM's own default is a 5 s socket timeout: a frozen Redis would hold every call that long.
        cache_kwargs=router_redis_options(settings) if settings.redis_url else {},
    )


def router_redis_options(settings: Settings) -> dict[str, Any]:
    """The Router's Redis client (cooldowns, usage) gets RouteIQ's timeouts, not LiteLLM's 5 s."""
    timeout = settings.redis_timeout_seconds
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def price_book(settings: Settings, deployments: DeploymentTable) -> PriceBook:
    """Per-token prices by group, for budgets to reserve a call's most expensive outcome."""
    prices = {
        group: [
            Price(d.input_cost_per_token or 0.0, d.output_cost_per_token or 0.0)
            for d in deployments.group(group)
        ]
        for group in deployments.groups
    }
    return PriceBook(prices, settings.fallbacks_for)


def litellm_model_facts(model: str) -> dict[str, Any]:
    """LiteLLM's bundled model map entry (prices, context window, capabilities), if it knows the model."""
    entry = litellm.model_cost.get(model) or litellm.model_cost.get(model.partition("/")[2])
    return dict(entry) if isinstance(entry, dict) else {}


@dataclass
class Foundation:
    """What outlives a config apply (``routeiq.config_apply``): the connections to the shared state
    and the database, the upstream HTTP pool and the Prometheus registry. Built once, from settings
    that cannot change while the gateway runs; every ``Runtime`` is built on it."""

    state: StateStores
    database: Database
    http: aiohttp.ClientSession
    metrics: Metrics
    opened: AsyncExitStack = field(repr=False)

    async def start_changes(self) -> None:
        """Once the runtime's live-changeable parts (and the config) watch their subjects."""
        await self.state.start_changes()
        await self.state.wait_subscribed(SUBSCRIBE_WAIT_SECONDS)

    async def close(self) -> None:
        """The stores before the database, the HTTP session last (reverse of opening)."""
        await self.opened.aclose()


async def open_foundation(settings: Settings) -> Foundation:
    stack = AsyncExitStack()
    try:
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300), skip_auto_headers=("User-Agent",)
        )
        stack.push_async_callback(http.close)
        database = Database.from_settings(settings)
        stack.push_async_callback(database.close)
        if settings.database_migrate_on_startup:
            await database.ensure_current()
        state = build_state_stores(settings)
        await state.start()
        stack.push_async_callback(state.close)
    except BaseException:
        await stack.aclose()
        raise
    return Foundation(state, database, http, Metrics(), stack)


async def build_runtime(
    settings: Settings,
    gate: TrafficGate,
    tracing: Tracing | None = None,
    foundation: Foundation | None = None,
) -> Runtime:
    """Build every part, opening and starting each one inside an exit stack: should startup fail
    half-way, exactly what was opened is closed again (in reverse), nothing leaks.

    Without ``foundation`` the runtime opens one of its own (closed with it) and starts following
    live changes; with one (the app's lifespan, a config apply) the caller owns both."""
    plugins = PluginManager.from_configs(settings.plugins, tracing)  # bad config fails before connecting
    deployments = DeploymentTable(
        settings.model_list, model_facts=litellm_model_facts, aliases=settings.model_aliases
    )
    owned = foundation is None
    if foundation is None:
        foundation = await open_foundation(settings)
    stack = AsyncExitStack()
    if owned:
        stack.push_async_callback(foundation.close)
    state = foundation.state
    try:
        policy = build_policy_engine(settings.policy, state.changes)
        runtime = await _open(settings, gate, stack, plugins, deployments, foundation, policy, tracing)
        if owned:
            await foundation.start_changes()
    except BaseException:
        await stack.aclose()
        raise
    logger.info(
        "router built: %d deployments in %d groups (%d via passthrough), strategy %s, state %s",
        len(deployments),
        len(deployments.groups),
        sum(1 for deployment in deployments if runtime.dispatcher.uses_passthrough(deployment)),
        runtime.strategy.names()["default"],
        state.backend,
    )
    return runtime


async def _open(
    settings: Settings,
    gate: TrafficGate,
    stack: AsyncExitStack,
    plugins: PluginManager,
    deployments: DeploymentTable,
    foundation: Foundation,
    policy: PolicyEngine | None,
    tracing: Tracing | None = None,
) -> Runtime:
    """The parts, each entered into ``stack`` as soon as it holds something that must be closed.

    Closing runs in reverse: plugins (the cost tracker flushes into the spend log and the stores)
    before the spend log, quotas (settlements still running) before the stores (the foundation's,
    closed after every runtime built on it), the stores before the database, and the HTTP session,
    which plugins use, last."""
    state, http, database, metrics = (
        foundation.state,
        foundation.http,
        foundation.database,
        foundation.metrics,
    )
    breakers = None
    if settings.circuit_breaker.enabled:
        breakers = CircuitBreakers(
            state.for_feature("breakers"),
            state.changes,
            settings.circuit_breaker,
            [d.id for d in deployments],
        )
    router = build_router(settings)
    models = load_routing_models(settings, on_classifier_fallback=metrics.classifier_fallbacks.inc)
    configured = settings.router_settings
    picker = Picker(router, deployments, create_strategy(configured.routing_strategy, models.deps), breakers)
    strategy = ActiveStrategy(
        state.changes,
        picker,
        models.deps,
        configured.routing_strategy,
        settings.group_strategy_names(),  # group_strategies and every cascade group
        local_if_unavailable=settings.state_failure_mode.routing == "open",
    )
    router.register_plugin(LiteLLMRoutingHook(router, picker))
    passthrough = None
    if settings.passthrough == "auto":
        passthrough = PassthroughExecutor(
            http, router.health(), settings.request_timeout_seconds, settings.connect_timeout_seconds
        )
    stats = ClusterStats(state.for_feature("stats"))
    # With in-memory state one worker is the whole deployment; with several each counts alone.
    shared = state.backend != "memory" or settings.workers == 1
    cluster_metrics = ClusterMetrics(
        state.for_feature("stats"), gate, state.changes.instance_id, shared=shared
    )
    plugins.follow(state.changes)
    metrics.watch(gate, breakers, state.health)
    affinity = SessionAffinity(state.for_feature("affinity"), settings.session_ttl_seconds)
    decisions = DecisionLog(settings.decision_log)
    outcomes = RoutingFeedback(breakers, stats, metrics, picker, affinity, models.deps.load)
    litellm_executor = LiteLLMExecutor(router, settings.request_timeout_seconds)
    audit_log = AuditRepository(database)
    experiments = await _experiments(settings, state, database, models.deps, audit_log)
    cascades = build_plans(settings, deployments)  # None without cascades; a bad verifier stops startup
    dispatcher = Dispatcher(
        settings,
        picker,
        passthrough,
        litellm_executor,
        outcomes,
        affinity,
        metrics,
        tracing,
        experiments,
        cascades,
    )
    spend = SpendRepository(database)
    quotas = Quotas(state.for_feature("quotas"), settings.quotas, price_book(settings, deployments))
    keys = VirtualKeys(KeyRepository(database), state.changes, settings.key_cache_seconds)
    spend_log = LogWriter(
        spend.write_many, settings.log_queue_size, on_drop=metrics.log_records_dropped.labels("spend").inc
    )
    reloads = RouterReloads(state.changes, models.slots)
    decision_records = DecisionRepository(database)
    decision_store = None
    if settings.decision_retention_days > 0:
        decision_store = LogWriter(
            decision_records.write_many,
            settings.log_queue_size,
            name="decisions",
            on_drop=metrics.log_records_dropped.labels("decisions").inc,
        )

    quotas.start()
    stack.push_async_callback(quotas.close)
    spend_log.start()
    stack.push_async_callback(spend_log.close)
    if decision_store is not None:
        decision_store.start()
        stack.push_async_callback(decision_store.close)
        retention = DecisionRetention(decision_records, settings.decision_retention_days)
        retention.start()
        stack.push_async_callback(retention.close)
    await plugins.start(PluginServices(state.for_feature("stats"), spend_log.submit, http, settings))
    stack.push_async_callback(plugins.close)
    if breakers is not None:
        await breakers.start()
        stack.push_async_callback(breakers.close)
    await stats.start()
    stack.push_async_callback(stats.close)
    await cluster_metrics.start()
    stack.push_async_callback(cluster_metrics.close)
    await experiments.start()
    stack.push_async_callback(experiments.close)
    decisions.start()
    stack.push_async_callback(decisions.close)
    if policy is not None:
        await policy.start()
        stack.push_async_callback(policy.close)
    return Runtime(
        plugins=plugins,
        database=database,
        keys=keys,
        audit=AuditTrail(
            audit_log,
            fail_closed=settings.audit_failure_mode == "closed",
            on_write_failure=metrics.audit_write_failures.inc,
        ),
        audit_log=audit_log,
        admin_login=AdminLogin(
            [key.get_secret_value() for key in settings.admin_keys],
            state.for_feature("quotas"),
            audit_log,
            settings.admin.login_failures_per_minute,
        ),
        spend=spend,
        spend_log=spend_log,
        decision_records=decision_records,
        decision_store=decision_store,
        experiments=experiments,
        settings=settings,
        deployments=deployments,
        router=router,
        picker=picker,
        http=http,
        dispatcher=dispatcher,
        state=state,
        breakers=breakers,
        strategy=strategy,
        models=models,
        reloads=reloads,
        stats=stats,
        cluster_metrics=cluster_metrics,
        decisions=decisions,
        metrics=metrics,
        policy=policy,
        quotas=quotas,
        started_at=int(time.time()),
        opened=stack,
    )


async def _experiments(
    settings: Settings, state: StateStores, database: Database, deps: StrategyDeps, audit_log: AuditRepository
) -> Experiments:
    """The experiments, starting from the durable store's definitions (what a cold restart has);
    the shared state's newer version, if any, replaces them at the first sync."""
    repository = ExperimentRepository(database)
    try:
        stored = await repository.all()
    except StoreUnavailable as error:
        logger.warning("experiments not loaded from the database (%s): only the shared state's apply", error)
        stored = []
    return Experiments(
        state.changes,
        state.for_feature("stats"),
        repository,
        FeedbackRepository(database),
        deps,
        audit_log,
        stored,
    )
