"""The CLI as a user runs it: a subprocess, checking exit codes and what it prints."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "routeiq", *args], capture_output=True, text=True, timeout=120
    )


def test_help_and_version_import_neither_litellm_nor_sqlalchemy() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "from routeiq.cli import main\n"
        "for argv in (['--help'], ['serve', '--help'], ['version'], ['db', '--help'],\n"
        "             ['db', 'upgrade', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_version_matches_package_metadata() -> None:
    result = run("version")
    assert result.returncode == 0
    assert result.stdout.strip() == version("routeiq")


def test_check_config_accepts_demo() -> None:
    result = run("check-config", str(ROOT / "config" / "demo.yaml"))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "4 deployments in 2 groups" in result.stdout


def test_check_config_names_bad_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("routeiq:\n  max_concurrent_requests: lots\n")
    result = run("check-config", str(path))
    assert result.returncode == 2
    assert f"{path}: routeiq.max_concurrent_requests" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_reports_what_litellm_rejects(tmp_path: Path) -> None:
    path = tmp_path / "bad-litellm.yaml"
    path.write_text(
        "model_list:\n  - model_name: auto\n    litellm_params: {model: openai/x, api_key: k}\n"
        "    model_info: {id: x, base_model: 12}\n"
    )
    result = run("check-config", str(path))
    assert result.returncode == 2, result.stdout
    assert "LiteLLM rejects the model_list" in result.stderr


def test_serve_stops_on_invalid_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("routeiq:\n  port: 0\n")
    result = run("serve", "--config", str(path))
    assert result.returncode == 2
    assert "routeiq.port" in result.stderr
