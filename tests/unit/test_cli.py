"""The CLI as a user runs it: a subprocess, checking exit codes and what it prints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from tests.support.gateway import COMMAND_TIMEOUT_SECONDS, free_port

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "routeiq", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
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


def test_building_the_app_does_not_import_litellm() -> None:
    """The app is built before its lifespan: LiteLLM's seconds of import belong to startup only."""
    probe = (
        "import sys\n"
        "from routeiq.app import create_app\n"
        "from routeiq.settings import Settings\n"
        "create_app(Settings())\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
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


def run_with(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI with a clean ROUTEIQ_* environment plus ``env``."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ROUTEIQ_")}
    return subprocess.run(
        [sys.executable, "-m", "routeiq", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        env={**environ, **env},
        cwd=cwd,
    )


TYPOS = """\
model_list:
  - model_name: auto
    litellm_params: {model: openai/a, api_key: k}
    model_info: {id: a, teir: premium}
  - model_name: auto
    litellm_params: {model: openai/b, api_key: k}
    model_info: {id: b, tier: premum}
router_settings:
  num_retrys: 2
routeiq:
  max_concurent_requests: 5
"""


def test_check_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "typos.yaml"
    path.write_text(TYPOS)
    result = run_with(["check-config", str(path)], {"ROUTEIQ_MASTERKEY": "sk-x"})
    assert result.returncode == 2, result.stdout
    for expected in (
        f"{path}: model_list.0.model_info.teir: unknown key (did you mean 'tier'?)",
        f"{path}: model_list.1.model_info.tier: unknown tier 'premum' (did you mean 'premium'?)",
        f"{path}: router_settings.num_retrys: unknown key (did you mean 'num_retries'?)",
        f"{path}: routeiq.max_concurent_requests: unknown key (did you mean 'max_concurrent_requests'?)",
        "environment variable ROUTEIQ_MASTERKEY: not a RouteIQ setting (did you mean 'ROUTEIQ_MASTER_KEY'?)",
    ):
        assert expected in result.stderr, result.stderr
    assert "5 problems" in result.stderr
    assert "Traceback" not in result.stderr and "Extra inputs are not permitted" not in result.stderr
    # serve stops on the same problems, all of them, before anything starts.
    served = run_with(
        ["serve", "--config", str(path), "--port", str(free_port())], {"ROUTEIQ_MASTERKEY": "sk-x"}
    )
    assert served.returncode == 2 and "5 problems" in served.stderr and "Traceback" not in served.stderr


def test_check_config_warns_on_litellm_params_typo_and_errs_on_routeiq_key_typo(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        "model_list:\n  - model_name: auto\n"
        "    litellm_params: {model: openai/a, api_key: k, api_bsae: 'http://127.0.0.1:9/v1'}\n"
    )
    result = run_with(["check-config", str(path)], {})
    assert result.returncode == 0, result.stderr
    assert (
        f"warning: {path}: model_list.0.litellm_params.api_bsae: not a key LiteLLM knows "
        "(did you mean 'api_base'?)" in result.stderr
    )
    path.write_text(
        "model_list:\n  - model_name: auto\n    litellm_params: {model: openai/a, api_key: k}\n"
        "    model_info: {input_cost_per_tokn: 0.000001}\n"
    )
    result = run_with(["check-config", str(path)], {})
    assert result.returncode == 2
    assert (
        "model_list.0.model_info.input_cost_per_tokn: unknown key (did you mean 'input_cost_per_token'?)"
        in (result.stderr)
    )


def test_kubernetes_service_links_do_not_stop_the_cli() -> None:
    links = {
        "ROUTEIQ_SERVICE_HOST": "10.0.0.1",
        "ROUTEIQ_SERVICE_PORT": "4000",
        "ROUTEIQ_PORT": "tcp://10.0.0.1:4000",
        "ROUTEIQ_PORT_4000_TCP": "tcp://10.0.0.1:4000",
        "ROUTEIQ_PORT_4000_TCP_PROTO": "tcp",
        "ROUTEIQ_PORT_4000_TCP_PORT": "4000",
        "ROUTEIQ_PORT_4000_TCP_ADDR": "10.0.0.1",
    }
    result = run_with(["check-config", str(ROOT / "config" / "demo.yaml")], links)
    assert result.returncode == 0, result.stderr
    assert "4 deployments in 2 groups" in result.stdout


def test_malformed_redis_url_is_a_config_error_naming_the_variable(tmp_path: Path) -> None:
    env = {"ROUTEIQ_REDIS_URL": "localhost:6379", "ROUTEIQ_DATA_DIR": str(tmp_path / "data")}
    for args in (["check-config", str(ROOT / "config" / "demo.yaml")], ["serve", "--port", str(free_port())]):
        result = run_with(args, env)
        assert result.returncode == 2
        assert result.stderr.startswith("routeiq: environment variable ROUTEIQ_REDIS_URL: not a Redis URL")
        assert "Traceback" not in result.stderr


def test_serve_reports_a_taken_port_in_one_line_before_starting(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_with(
            [
                "serve",
                "--config",
                str(ROOT / "config" / "demo.yaml"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            {"ROUTEIQ_DATA_DIR": str(data_dir)},
        )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"routeiq: port {port} on 127.0.0.1 is already in use (another server?); "
        "pick another with --port or ROUTEIQ_PORT"
    ]
    assert not data_dir.exists(), "the database was opened before the port was checked"


def train_knn(out: Path) -> Path:
    data = ROOT / "tests" / "fixtures" / "routellm-mmlu-small"
    result = run_with(["train", "--algo", "knn", "--data", str(data), "--out", str(out)], {})
    assert result.returncode == 0, result.stderr
    return out


def test_learned_router_paths_are_relative_to_the_config_file_and_checked(tmp_path: Path) -> None:
    config_dir = tmp_path / "conf"
    train_knn(config_dir / "routers" / "knn")
    path = config_dir / "config.yaml"
    config = (
        (ROOT / "config" / "demo.yaml")
        .read_text()
        .replace("routing_strategy: llmrouter-centroid", "routing_strategy: llmrouter-knn")
    )
    path.write_text(config + "  learned_routers: {knn: routers/knn}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok = run_with(["check-config", str(path)], {}, cwd=elsewhere)
    assert ok.returncode == 0, ok.stderr
    assert f"learned_routers.knn: OK - {config_dir / 'routers' / 'knn'}" in ok.stdout
    # A missing or broken artifact: a clear message naming the setting, from check-config and serve.
    path.write_text(config + "  learned_routers: {knn: routers/missing}\n")
    (config_dir / "routers" / "knn" / "weights.npz").write_bytes(b"corrupt")
    for args in (["check-config", str(path)], ["serve", "--config", str(path), "--port", str(free_port())]):
        result = run_with(args, {"ROUTEIQ_DATA_DIR": str(tmp_path / "data")}, cwd=elsewhere)
        assert result.returncode == 2
        assert (
            f"{path}: routeiq.learned_routers.knn: {config_dir / 'routers' / 'missing'} is not a directory"
            in result.stderr
        )
        assert "Traceback" not in result.stderr
    path.write_text(config + "  learned_routers: {knn: routers/knn}\n")
    broken = run_with(["check-config", str(path)], {}, cwd=elsewhere)
    assert broken.returncode == 2
    assert f"{path}: routeiq.learned_routers.knn: not a usable router artifact:" in broken.stderr
    assert "sha256 mismatch" in broken.stderr and "Traceback" not in broken.stderr


def test_invalid_settings_do_not_hide_policy_plugin_and_router_problems(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("rules: [{name: x, bogus: 1}]\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n  - model_name: auto\n    litellm_params: {model: openai/a, api_key: k}\n"
        "    model_info: {tier: premum}\n"
        "routeiq:\n  policy: {file: rules.yaml}\n  learned_routers: {knn: nowhere}\n"
        "  plugins: [{name: nosuchplugin}]\n"
    )
    for args in (["check-config", str(path)], ["serve", "--config", str(path), "--port", str(free_port())]):
        result = run_with(args, {"ROUTEIQ_DATA_DIR": str(tmp_path / "data")})
        assert result.returncode == 2
        assert "(4 problems)" in result.stderr, result.stderr
        assert f"{path}: model_list.0.model_info.tier: unknown tier 'premum'" in result.stderr
        assert f"routeiq.policy.file: {tmp_path / 'rules.yaml'}: invalid policy" in result.stderr
        assert "bogus: unknown key" in result.stderr
        assert "plugins[0] (nosuchplugin): unknown plugin 'nosuchplugin'" in result.stderr
        assert f"routeiq.learned_routers.knn: {tmp_path / 'nowhere'} is not a directory" in result.stderr
        assert "Traceback" not in result.stderr


def test_check_config_warns_about_an_unusable_classifier_dir(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n  - model_name: auto\n    litellm_params: {model: openai/a, api_key: k}\n"
        "routeiq:\n  classifier_dir: nowhere\n"
    )
    result = run_with(["check-config", str(path)], {})
    assert result.returncode == 0, result.stderr  # serve still starts, degraded: a warning, not an error
    assert f"warning: {path}: routeiq.classifier_dir: unusable (" in result.stderr
    assert str(tmp_path / "nowhere") in result.stderr  # relative to the config file
