"""The container image: hadolint, the Dockerfile's invariants, and its commands replayed.

No container daemon exists where RouteIQ is developed and tested, so the image is never built here.
Instead the build stage's own RUN commands, and the final stage's ENTRYPOINT and HEALTHCHECK, are
read out of the Dockerfile and run in a fresh venv laid out like the image's filesystem under a
temporary root (/opt/routeiq, /app, /etc/routeiq, /var/lib/routeiq). What differs from a real build:
the base image's Python is this machine's interpreter; pip resolves from a wheelhouse that pip itself
downloaded from the package index (binary wheels only, cached per dependency list, so a run costs an
install, not a download); the final stage's useradd is not run (it needs root and would change this
machine). What is the same: the commands, the files each COPY brings, the environment each ENV sets.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.dockerfile import Dockerfile, Stage, parse
from tests.support.gateway import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
COMPILERS = ("gcc", "g++", "build-essential", "clang", "make ")


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse(DOCKERFILE)


def test_hadolint_passes_and_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    result = subprocess.run([str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # The linter really runs: an unpinned base and an unpinned apt install are findings.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run([str(HADOLINT), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout, result.stdout


def test_image_invariants(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, "multi-stage: build tools stay out of the final image"
    base = dockerfile.global_args["PYTHON_IMAGE"]
    assert "slim" in base and base.startswith("python:3.11"), base
    final = dockerfile.final
    # Non-root, by number (Kubernetes' runAsNonRoot cannot resolve a name).
    user = final.last("USER")
    assert user is not None and user.arguments.split(":")[0].isdigit() and user.arguments.split(":")[0] != "0"
    # No compiler installed in the final stage.
    for run in final.all("RUN"):
        assert not any(word in run.arguments + " " for word in COMPILERS), run.arguments
    # The venv comes from the build stage; the classifier data is inside the image.
    copies = final.copies()
    assert any(flags.get("from") == "build" for _, _, flags in copies)
    assert any("data/classifier" in sources for sources, _, _ in copies)
    assert final.env()["ROUTEIQ_CLASSIFIER_DIR"] in {dest for _, dest, _ in copies}
    # Exec form, so routeiq is PID 1 and receives SIGTERM itself (the drain runs).
    entrypoint = final.last("ENTRYPOINT")
    assert entrypoint is not None and entrypoint.exec_form == ["routeiq", "serve"]
    assert final.last("STOPSIGNAL") is not None and final.last("STOPSIGNAL").arguments == "SIGTERM"  # type: ignore[union-attr]
    healthcheck = _healthcheck_command(final)
    script = ROOT / "deploy/docker/healthcheck.py"
    assert healthcheck[-1] in {dest for _, dest, _ in copies} and "/_health/live" in script.read_text()
    assert final.last("EXPOSE") is not None and final.last("EXPOSE").arguments == "4000"  # type: ignore[union-attr]


def test_dockerignore_admits_every_copied_path_and_nothing_else(dockerfile: Dockerfile) -> None:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "everything is excluded unless listed"
    admitted = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    for stage in dockerfile.stages:
        for sources, _, flags in stage.copies():
            if "from" in flags:
                continue
            for source in sources:
                assert any(source == path or source.startswith(path + "/") for path in admitted), source
                assert (ROOT / source).exists(), source


def _healthcheck_command(stage: Stage) -> list[str]:
    healthcheck = stage.last("HEALTHCHECK")
    assert healthcheck is not None
    _, _, command = healthcheck.arguments.partition("CMD ")
    assert command.startswith("["), "exec form"
    import json

    return [str(word) for word in json.loads(command)]


def _inside(root: Path, container_path: str) -> Path:
    return root / container_path.lstrip("/")


def _wheelhouse() -> Path:
    """Binary wheels of every dependency (and the build backend), downloaded once per dependency list."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = sorted(project["project"]["dependencies"]) + sorted(project["build-system"]["requires"])
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    house = Path(sys.prefix) / "cache" / f"deploy-wheelhouse-{key}"
    if not (house / ".complete").exists():
        shutil.rmtree(house, ignore_errors=True)
        house.mkdir(parents=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "-d",
            str(house),
        ]
        subprocess.run([*command, *requirements], check=True)
        (house / ".complete").touch()
    return house


def _copy(source: Path, destination: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def _lay_out_copies(stage: Stage, rootfs: Path) -> None:
    """Bring each COPY of the build context (not ``--from``) to where the image would have it."""
    workdir = "/"
    for item in stage.instructions:
        if item.keyword == "WORKDIR":
            workdir = item.arguments.strip()
            _inside(rootfs, workdir).mkdir(parents=True, exist_ok=True)
        if item.keyword != "COPY":
            continue
        words = shlex.split(item.arguments)
        if any(word.startswith("--from") for word in words):
            continue
        *sources, destination = words
        target = _inside(rootfs, destination if destination.startswith("/") else f"{workdir}/{destination}")
        for source in sources:
            if destination.endswith("/"):
                _copy(ROOT / source, target / Path(source).name)
            else:
                _copy(ROOT / source, target)


def _stage_environment(stage: Stage, rootfs: Path) -> dict[str, str]:
    """The stage's ENV/ARG values with the image's paths moved under ``rootfs``."""
    env = {"HOME": str(rootfs / "home"), "LANG": "C.UTF-8"}
    venv_path = stage.env().get("VENV", "")
    for key, value in stage.env().items():
        if key == "PATH":
            parts = value.replace("$PATH", f"{Path(sys.base_prefix) / 'bin'}:/usr/bin:/bin").split(":")
            value = ":".join(
                str(_inside(rootfs, part)) if part.startswith(venv_path) else part for part in parts
            )
        elif value.startswith("/") and (key == "VENV" or key.startswith("ROUTEIQ_") or key == "WHEELS"):
            value = str(_inside(rootfs, value))
        env[key] = value
    env.setdefault("PATH", f"{Path(sys.base_prefix) / 'bin'}:/usr/bin:/bin")
    return env


@contextlib.contextmanager
def _serving(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_build_and_start_commands_work_in_a_fresh_venv(dockerfile: Dockerfile, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    build = dockerfile.stage("build")
    _lay_out_copies(build, rootfs)
    env = _stage_environment(build, rootfs)
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(_wheelhouse()))
    workdir = _inside(rootfs, build.last("WORKDIR").arguments)  # type: ignore[union-attr]
    for run in build.all("RUN"):
        result = subprocess.run(
            ["sh", "-c", run.arguments], cwd=workdir, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{run.arguments}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert (rootfs / "opt/routeiq/bin/routeiq").exists()

    # The final stage: its files, its environment, a writable data dir (useradd's mkdir + chown).
    final = dockerfile.final
    _lay_out_copies(final, rootfs)
    env = _stage_environment(final, rootfs)
    Path(env["ROUTEIQ_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    port = free_port()
    env.update(ROUTEIQ_PORT=str(port), ROUTEIQ_HOST="127.0.0.1")  # a free port instead of 4000
    healthcheck = [
        str(_inside(rootfs, word)) if word.startswith("/") else word for word in _healthcheck_command(final)
    ]
    app_dir = _inside(rootfs, final.last("WORKDIR").arguments)  # type: ignore[union-attr]
    assert subprocess.run(healthcheck, env=env, cwd=app_dir).returncode == 1, "nothing serves yet"

    entrypoint = final.last("ENTRYPOINT").exec_form  # type: ignore[union-attr]
    assert entrypoint is not None
    executable = shutil.which(entrypoint[0], path=env["PATH"])
    assert executable == str(rootfs / "opt/routeiq/bin/routeiq"), executable
    with _serving([executable, *entrypoint[1:]], env, app_dir, tmp_path / "gateway.log") as process:
        url = f"http://127.0.0.1:{port}"
        ready = _wait_ready(url, process, tmp_path / "gateway.log")
        # The bundled demo config and the classifier data are found where the image puts them.
        assert ready["checks"]["classifier"] == "ok", ready
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={
                "model": "auto",
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
            },
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-routeiq-served-model"].startswith("demo-")
        assert subprocess.run(healthcheck, env=env, cwd=app_dir).returncode == 0
        # STOPSIGNAL SIGTERM to PID 1: a drained, clean exit.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, (tmp_path / "gateway.log").read_text()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"{url}/_health/ready", timeout=2)
            if response.status_code == 200:
                body: dict[str, object] = response.json()
                return body
        time.sleep(0.2)
    raise AssertionError(f"not ready:\n{log.read_text()}")
