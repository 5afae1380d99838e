"""The shipped systemd unit and the README sections about it agree with the code."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from monitor.cli import main
from monitor.config import HackerNewsSettings, SourceBase

from .conftest import ROOT

UNIT = ROOT / "deploy" / "monitor.service"
README = (ROOT / "README.md").read_text()


def unit() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_the_unit_runs_the_daemon_as_a_dedicated_user_and_stops_it_with_sigterm():
    service = unit()["Service"]
    assert service["User"] == ["monitor"]
    (exec_start,) = service["ExecStart"]
    args = exec_start.split()
    assert args[0].endswith("/bin/monitor") and args[-1] == "run"
    assert args[-1] in main.commands and "check" in main.commands
    assert service["Restart"] == ["on-failure"] and service["RestartPreventExitStatus"] == ["2"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert int(service["TimeoutStopSec"][0].rstrip("s")) >= 60
    assert service["WorkingDirectory"] == ["/var/lib/monitor"]
    assert "/var/lib/monitor" in service["ReadWritePaths"]
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                       ("ProtectHome", "yes")]:
        assert service[key] == [value], key
    assert unit()["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(tmp_path):
    copy = tmp_path / "monitor.service"
    copy.write_text(UNIT.read_text().replace("/opt/monitor/venv/bin/monitor", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_the_readme_installs_the_shipped_unit():
    section = README.split("## Run as a systemd service", 1)[1]
    assert "deploy/monitor.service" in section
    assert "/etc/monitor/config.yaml" in section and "/var/lib/monitor/monitor.db" in section
    for command in re.findall(r"/bin/monitor -c \S+ (\w+)", section):
        assert command in main.commands


def test_the_readme_documents_every_hacker_news_setting():
    section = README.split("### Hacker News\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    example = yaml.safe_load(block.replace("# base_url", "base_url"))["sources"][0]
    HackerNewsSettings.model_validate(example)  # the example is valid
    documented = set(example)
    own = set(HackerNewsSettings.model_fields) - set(SourceBase.model_fields)  # the generic keys have their table
    assert documented >= own | {"every", "base_url", "max_pages"}
