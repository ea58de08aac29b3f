"""``routeiq``: serve, check-config, train, classify, db, version.

Only ``serve`` and ``check-config`` import LiteLLM (seconds of import time); ``train`` and
``classify`` import numpy and the router code inside their commands; ``--help`` and ``version``
stay instant.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from routeiq import __version__
from routeiq.config import CONFIG_PATH_ENV, ENV_PREFIX, ConfigError, load_settings
from routeiq.routing.catalogue import (
    CENTROID_STRATEGY,
    CLASSIFIER_STRATEGIES,
    DEFAULT_STRATEGY,
    STRATEGIES,
    TRAINABLE,
)
from routeiq.settings import Settings

if TYPE_CHECKING:
    from routeiq.governance.policy import RuleSet

SERVE_FLAGS = ("host", "port", "workers", "log_level")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routeiq", description="RouteIQ: an OpenAI-compatible LLM gateway.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the gateway")
    serve.add_argument("--config", type=Path, default=None, help=f"YAML config file (or ${CONFIG_PATH_ENV})")
    serve.add_argument("--host", default=None, help="interface to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default 4000)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes; >1 runs gunicorn")
    serve.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])

    check = commands.add_parser("check-config", help="validate a config file without serving")
    check.add_argument("config", type=Path, help="YAML config file")

    commands.add_parser("strategies", help="list the routing strategies")
    _add_learned_commands(commands)

    database = commands.add_parser("db", help="the durable store's schema (virtual keys, audit, spend)")
    db_commands = database.add_subparsers(dest="db_command", required=True)
    for name, text in (("upgrade", "apply the schema migrations"), ("current", "print the schema revision")):
        db_command = db_commands.add_parser(name, help=text)
        db_command.add_argument(
            "--config", type=Path, default=None, help=f"YAML config file (or ${CONFIG_PATH_ENV})"
        )

    commands.add_parser("version", help="print the version")
    return parser


def _cv_folds(value: str) -> int:
    folds = int(value)
    if folds == 1 or folds < 0:
        raise argparse.ArgumentTypeError("0 (skip) or at least 2 folds")
    return folds


def _add_learned_commands(commands: Any) -> None:
    """``train`` and ``classify``: argparse only here; their bodies live in routeiq.routing.learned."""
    train = commands.add_parser("train", help="train a learned router from prompts with per-model outcomes")
    train.add_argument(
        "--algo", required=True, choices=TRAINABLE, help="router algorithm, or the cascade's answer verifier"
    )
    train.add_argument("--data", required=True, type=Path, help="RouteLLM-style CSV folder/file or JSONL")
    train.add_argument("--out", required=True, type=Path, help="artifact directory to write (atomically)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--strong", default=None, help="the strong model's label (default: best on average)")
    train.add_argument("--weak", default=None, help="the weak model's label (default: worst on average)")
    train.add_argument("--hmac-key-env", default=None, metavar="NAME", help="sign with the HMAC key in $NAME")
    train.add_argument(
        "--encoder", default="centroid", choices=["centroid", "hashing"], help="prompt encoder"
    )
    train.add_argument("--test-fraction", type=float, default=0.2, help="held-out share (sha256 split)")
    train.add_argument(
        "--strong-fraction",
        type=float,
        default=0.5,
        help="share of training prompts above the saved threshold",
    )
    train.add_argument("--param", action="append", metavar="KEY=VALUE", help="algorithm hyper-parameter")
    train.add_argument(
        "--cv-folds",
        type=_cv_folds,
        default=5,
        help="k-fold cross-validated AUROC on the training side (default 5; 0 skips it)",
    )

    classify = commands.add_parser("classify", help="classify JSON-lines prompts (stdin or --input)")
    classify.add_argument("--input", default=None, type=Path, help="JSON-lines file (default: stdin)")
    classify.add_argument(
        "--strategy",
        default=CENTROID_STRATEGY,
        choices=CLASSIFIER_STRATEGIES,
        help=f"classifier to use (default {CENTROID_STRATEGY})",
    )
    classify.add_argument(
        "--model-path", default=None, type=Path, help="trained artifact for learned strategies"
    )
    classify.add_argument(
        "--threshold", type=float, default=None, help="p_strong cut-off (default: the model's)"
    )
    classify.add_argument("--hmac-key-env", default=None, metavar="NAME", help="verify the artifact's HMAC")
    classify.add_argument("--batch-size", type=int, default=1024, help="prompts embedded per batch")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "strategies":
        for spec in sorted(STRATEGIES, key=lambda spec: spec.name):
            marker = " (default)" if spec.name == DEFAULT_STRATEGY else ""
            print(f"{spec.name:28} {spec.description}{marker}")
        return 0
    if args.command in ("train", "classify"):
        from routeiq.routing.learned import commands

        return commands.run_train(args) if args.command == "train" else commands.run_classify(args)
    try:
        if args.command == "check-config":
            return _check_config(args.config)
        if args.command == "db":
            settings = load_settings(args.config or os.environ.get(CONFIG_PATH_ENV))
            return _database(args.db_command, settings)
        return _serve(args)
    except ConfigError as error:
        print(f"routeiq: {error}", file=sys.stderr)
        return 2


def _check_config(path: Path) -> int:
    try:
        settings = load_settings(path)  # every problem in the file and the environment, at once
    except ConfigError as error:
        raise _with_deeper_problems(error, path, with_litellm=True) from None
    problems, warnings = _check_deeper(settings, path, with_litellm=True, with_router=True)
    warnings.extend(_classifier_warnings(settings, path))
    from routeiq.routing.deployments import DeploymentTable

    for warning in warnings:
        print(f"routeiq: warning: {warning}", file=sys.stderr)
    if problems:
        raise ConfigError(problems)
    table = DeploymentTable(settings.model_list, aliases=settings.model_aliases)
    passthrough = (
        sum(1 for deployment in table if deployment.speaks_openai) if settings.passthrough == "auto" else 0
    )
    print(
        f"{path}: OK - {len(table)} deployments in {len(table.groups)} groups "
        f"({passthrough} via passthrough), strategy {settings.router_settings.routing_strategy}"
    )
    if settings.policy.file:
        policy = _check_policy(settings, path)
        if policy is not None:
            print(f"{policy.source}: OK - {len(policy.rules)} policy rules")
    if settings.plugins:
        from routeiq.plugins.manager import load_plugins

        print(f"plugins: OK - {', '.join(loaded.name for loaded in load_plugins(settings.plugins))}")
    for algo, directory in settings.learned_routers.items():
        print(f"learned_routers.{algo}: OK - {directory}")
    return 0


def _check_deeper(
    settings: Settings, config_path: str | Path | None, *, with_litellm: bool, with_router: bool = False
) -> tuple[list[str], list[str]]:
    """What valid settings can still get wrong, all of it: (problems, warnings)."""
    problems = _check_named_files(settings, config_path)
    warnings: list[str] = []
    if with_litellm:
        more, warnings = _check_with_litellm(settings, config_path, with_router=with_router)
        problems.extend(more)
    return problems, warnings


def _check_named_files(settings: Settings, config_path: str | Path | None) -> list[str]:
    """The policy file, plugins and trained routers the settings name (no LiteLLM import)."""
    problems: list[str] = []
    for check in (_check_policy, _check_plugins):
        try:
            check(settings, config_path)
        except ConfigError as error:
            problems.extend(error.problems)
    problems.extend(_learned_router_problems(settings, _source(config_path)))
    return problems


def _check_with_litellm(
    settings: Settings, config_path: str | Path | None, *, with_router: bool
) -> tuple[list[str], list[str]]:
    """model_list keys against LiteLLM's: (problems, warnings). Imports LiteLLM (seconds), which
    ``serve`` only does in a process that goes on to serve. ``with_router`` lets LiteLLM build a
    Router from the model_list too (``check-config``; ``serve`` builds the real one moments later)."""
    from routeiq.routing.deployments import config_key_problems
    from routeiq.runtime import build_router

    keys = config_key_problems(settings.model_list, _source(config_path))
    problems = list(keys.errors)
    if with_router and not keys.errors:
        try:
            build_router(settings)
        except Exception as error:  # LiteLLM's own validation of model_list entries
            problems.append(f"{_source(config_path)}: LiteLLM rejects the model_list: {error}")
    return problems, keys.warnings


def _source(config_path: str | Path | None) -> str:
    return str(config_path) if config_path else "<no config file>"


def _with_deeper_problems(
    error: ConfigError, config_path: str | Path | None, *, with_litellm: bool
) -> ConfigError:
    """The settings' problems plus those of the policy file, plugins and routers their valid parts
    name, so one run shows everything (LiteLLM's Router is not built from invalid settings)."""
    if error.partial is None:
        return error
    more, _ = _check_deeper(error.partial, config_path, with_litellm=with_litellm)
    return ConfigError([*error.problems, *more])


def _classifier_warnings(settings: Settings, config_path: str | Path | None) -> list[str]:
    """A classifier_dir that does not load is a warning: serve still starts, degraded (the length rule)."""
    if not settings.classifier_dir:
        return []
    from routeiq.routing.classifier import CentroidClassifier, ClassifierUnavailable

    try:
        CentroidClassifier.load(Path(settings.classifier_dir))
    except ClassifierUnavailable as error:
        return [
            f"{_source(config_path)}: routeiq.classifier_dir: unusable ({error}); "
            "serve would route by the prompt-length rule and report degraded"
        ]
    return []


def _check_plugins(settings: Settings, config_path: str | Path | None) -> None:
    if settings.plugins:
        from routeiq.plugins.manager import load_plugins

        load_plugins(settings.plugins)  # ConfigError naming the entry on a bad name or settings


def _learned_router_problems(settings: Settings, source: str) -> list[str]:
    """Each trained router artifact loads and verifies (a relative path is relative to the file)."""
    if not settings.learned_routers:
        return []
    from routeiq.routing.learned import ArtifactError, load_router
    from routeiq.routing.learned.encoder import EncoderUnavailable

    key = settings.router_hmac_key.get_secret_value() if settings.router_hmac_key else None
    problems = []
    for algo, directory in settings.learned_routers.items():
        where = f"{source}: routeiq.learned_routers.{algo}"
        if not Path(directory).is_dir():
            problems.append(f"{where}: {directory} is not a directory (a trained router artifact)")
            continue
        try:
            router = load_router(directory, hmac_key=key)
        except (ArtifactError, EncoderUnavailable, OSError) as error:
            problems.append(f"{where}: not a usable router artifact: {error}")
            continue
        if router.info.algo != algo:
            problems.append(f"{where}: {directory} holds a {router.info.algo} router, not {algo}")
    return problems


def _database(action: str, settings: Settings) -> int:
    """``routeiq db upgrade|current``; and ``startup``, which ``serve`` runs once before any worker
    starts: migrate if the schema is behind (unless turned off) and audit a changed configuration.
    SQLAlchemy is imported here, not for ``--help``."""
    import asyncio

    from routeiq.governance.audit import record_config_change
    from routeiq.store.audit import AuditRepository
    from routeiq.store.database import Database, StoreUnavailable

    try:
        db = Database.from_settings(settings)
    except ValueError as error:
        raise ConfigError(str(error)) from None

    async def run() -> str | None:
        try:
            if action == "upgrade":
                return await db.upgrade()
            if action == "current":
                return await db.current_revision()
            if settings.database_migrate_on_startup and not await db.is_current():
                await _upgrade_in_child()
            await record_config_change(AuditRepository(db), settings)
            return None
        finally:
            await db.close()

    try:
        revision = asyncio.run(run())
    except StoreUnavailable as error:
        print(f"routeiq: database {db.display_url} unreachable: {error}", file=sys.stderr)
        return 1
    if action != "startup":
        print(f"{db.display_url}: revision {revision or 'none'} (head {Database.head_revision()})")
    return 0


async def _upgrade_in_child() -> None:
    """``routeiq db upgrade`` in a child process: Alembic (about 9 MB) never stays resident in a
    process that goes on to serve. The child reads the same settings from the environment."""
    import asyncio

    from routeiq.store.database import StoreUnavailable

    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "routeiq", "db", "upgrade", stdout=asyncio.subprocess.DEVNULL
    )
    if await child.wait() != 0:
        raise StoreUnavailable("the schema migration failed (see above)")


def _check_policy(settings: Settings, config_path: str | Path | None) -> RuleSet | None:
    from routeiq.governance.policy import PolicyError, check_policy_file

    try:
        return check_policy_file(settings.policy, config_path)
    except PolicyError as error:
        raise ConfigError(f"routeiq.policy.file: {error}") from None


def _serve(args: argparse.Namespace) -> int:
    config_path = args.config or os.environ.get(CONFIG_PATH_ENV)
    overrides = {name: getattr(args, name) for name in SERVE_FLAGS if getattr(args, name) is not None}
    try:
        settings = load_settings(config_path, overrides)
    except ConfigError as error:
        raise _with_deeper_problems(error, config_path, with_litellm=False) from None
    if problems := _check_named_files(settings, config_path):
        raise ConfigError(problems)
    # Before anything slow (LiteLLM's import, the database): a taken port is one line, not a
    # traceback after seconds of startup.
    if problem := port_problem(settings.host, settings.port):
        print(f"routeiq: {problem}", file=sys.stderr)
        return 1
    _configure_logging(settings.log_level)
    # check-config's LiteLLM key checks too, where this process imports LiteLLM anyway (one
    # worker); a gunicorn master stays small, and its workers log them as warnings instead.
    warnings: list[str] = []
    if settings.workers == 1:
        problems, warnings = _check_with_litellm(settings, config_path, with_router=False)
        if problems:
            raise ConfigError(problems)
    log = logging.getLogger("routeiq")
    for warning in warnings:
        log.warning("config: %s", warning)
    if not settings.model_list:
        log.warning("%s", NO_DEPLOYMENTS)
    # Workers build their own settings from the environment: hand them the file and the flags
    # there, the flags overwriting any inherited ROUTEIQ_* value so the precedence holds.
    if config_path:
        os.environ[CONFIG_PATH_ENV] = str(Path(config_path).resolve())
    for name, value in overrides.items():
        os.environ[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    # Once here, before any worker starts: an unreachable database is one clear line, and workers
    # do not race each other through the migration or the config-change record.
    if status := _database("startup", settings):
        return status
    if settings.workers > 1 and not (settings.redis_url or settings.redis_sentinels):
        log.warning(
            "%d workers with in-memory state: breakers, the active strategy and stats are PER PROCESS; "
            "set ROUTEIQ_REDIS_URL to share them",
            settings.workers,
        )
    # After a drained shutdown the server re-raises SIGTERM; ending here with status 0 is the
    # normal outcome of a SIGTERM, not a crash.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if settings.workers == 1:
        return _run_uvicorn(settings)
    return _run_gunicorn(settings, config_path)


NO_DEPLOYMENTS = (
    "NO DEPLOYMENTS CONFIGURED: nothing to route to, and /_health/ready answers 503. "
    "Pass --config FILE (or set ROUTEIQ_CONFIG) with a model_list; `routeiq check-config FILE` checks it"
)


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port``, or None. Binds the way uvicorn and gunicorn
    do (SO_REUSEADDR on, so a port still in TIME_WAIT is not a false alarm), then lets go."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        return f"cannot listen on {host}:{port}: {error.strerror} (check --host / ROUTEIQ_HOST)"
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use (another server?); "
                    "pick another with --port or ROUTEIQ_PORT"
                )
            return f"cannot listen on {host}:{port}: {error.strerror}"
    return None


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # LiteLLM logs every call at INFO through its own handler; RouteIQ reports requests itself.
    # Its handler prints each record once already: not again through ours.
    quiet = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logger = logging.getLogger(name)
        logger.setLevel(quiet)
        logger.propagate = False
        logger.addFilter(_RedisDownNoise())
    # LiteLLM's Redis cache pings in fire-and-forget tasks: with Redis down, asyncio logs each
    # failure as "Task exception was never retrieved" with a full traceback.
    logging.getLogger("asyncio").addFilter(_RedisDownNoise())


class _RedisDownNoise(logging.Filter):
    """Drops the tracebacks and the repeated lines LiteLLM emits while Redis is unreachable:
    RouteIQ's state layer already says so once ("shared state unavailable ...: degrading") and
    readiness shows ``degraded`` until it is back. At debug level everything still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger("routeiq").isEnabledFor(logging.DEBUG):
            return True
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _is_redis_connection_error(error):
            return False
        # LiteLLM's Redis cache talks to the same Redis as RouteIQ's state layer, which reports it.
        return not (record.name.startswith("LiteLLM") and "redis" in record.getMessage().lower())


def _is_redis_connection_error(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        module = type(seen).__module__
        if module.startswith("redis") and type(seen).__name__ in ("ConnectionError", "TimeoutError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _run_uvicorn(settings: Settings) -> int:
    import uvicorn

    uvicorn.run(
        "routeiq.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=5,  # after the drain, only idle keep-alive connections are left
    )
    return 0


def _run_gunicorn(settings: Settings, config_path: str | Path | None) -> int:
    from gunicorn.app.base import BaseApplication

    class GatewayApplication(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"{settings.host}:{settings.port}",
                "workers": settings.workers,
                "worker_class": "uvicorn_worker.UvicornWorker",
                "loglevel": settings.log_level,
                "accesslog": "-" if settings.access_log else None,
                "graceful_timeout": int(settings.drain_timeout_seconds) + 5,
                "timeout": 0,  # async workers: streams may legitimately run for minutes
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from routeiq.app import app_from_environment

            app = app_from_environment()  # a worker imports LiteLLM anyway: the key checks are cheap here
            problems, warnings = _check_with_litellm(settings, config_path, with_router=False)
            for line in (*problems, *warnings):
                logging.getLogger("routeiq").warning("config: %s", line)
            return app

    GatewayApplication().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
