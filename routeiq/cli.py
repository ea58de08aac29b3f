"""``routeiq``: serve, check-config, version.

Only ``serve`` and ``check-config`` import LiteLLM (seconds of import time); ``--help`` and
``version`` stay instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from routeiq import __version__
from routeiq.config import CONFIG_PATH_ENV, ENV_PREFIX, ConfigError, load_settings
from routeiq.settings import Settings

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
    commands.add_parser("version", help="print the version")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "strategies":
        from routeiq.routing.registry import DEFAULT_STRATEGY, DESCRIPTIONS

        for name in sorted(DESCRIPTIONS):
            marker = " (default)" if name == DEFAULT_STRATEGY else ""
            print(f"{name:28} {DESCRIPTIONS[name]}{marker}")
        return 0
    try:
        if args.command == "check-config":
            return _check_config(args.config)
        return _serve(args)
    except ConfigError as error:
        print(f"routeiq: {error}", file=sys.stderr)
        return 2


def _check_config(path: Path) -> int:
    settings = load_settings(path)
    from routeiq.routing.deployments import DeploymentTable
    from routeiq.runtime import build_router

    try:
        build_router(settings)
    except Exception as error:  # LiteLLM's own validation of model_list entries
        raise ConfigError(f"{path}: LiteLLM rejects the model_list: {error}") from None
    table = DeploymentTable(settings.model_list)
    passthrough = (
        sum(1 for deployment in table if deployment.speaks_openai) if settings.passthrough == "auto" else 0
    )
    print(
        f"{path}: OK - {len(table)} deployments in {len(table.groups)} groups "
        f"({passthrough} via passthrough), strategy {settings.router_settings.routing_strategy}"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    config_path = args.config or os.environ.get(CONFIG_PATH_ENV)
    overrides = {name: getattr(args, name) for name in SERVE_FLAGS if getattr(args, name) is not None}
    settings = load_settings(config_path, overrides)
    # Workers build their own settings from the environment: hand them the file and the flags
    # there, the flags overwriting any inherited ROUTEIQ_* value so the precedence holds.
    if config_path:
        os.environ[CONFIG_PATH_ENV] = str(Path(config_path).resolve())
    for name, value in overrides.items():
        os.environ[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    _configure_logging(settings.log_level)
    if settings.workers > 1 and not (settings.redis_url or settings.redis_sentinels):
        logging.getLogger("routeiq").warning(
            "%d workers with in-memory state: breakers, the active strategy and stats are PER PROCESS; "
            "set ROUTEIQ_REDIS_URL to share them",
            settings.workers,
        )
    # After a drained shutdown the server re-raises SIGTERM; ending here with status 0 is the
    # normal outcome of a SIGTERM, not a crash.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if settings.workers == 1:
        return _run_uvicorn(settings)
    return _run_gunicorn(settings)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # LiteLLM logs every call at INFO through its own handler; RouteIQ reports requests itself.
    quiet = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(quiet)


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


def _run_gunicorn(settings: Settings) -> int:
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

            return app_from_environment()

    GatewayApplication().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
