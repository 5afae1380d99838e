"""deploy/Dockerfile agrees with the package: what it copies exists and is what pip needs, its
default config is valid, it runs `monitor run` as a non-root user. The image is not built
(no network in tests)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib

from monitor.cli import main
from monitor.config import WebSettings, load_settings

from .conftest import ROOT, write_config

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                                              if not line.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def args(name: str) -> list[str]:
    return [rest for word, rest in instructions() if word == name]


def env() -> dict[str, str]:
    out = {}
    for rest in args("ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            out[key] = value
    return out


def test_the_base_image_has_a_python_the_project_supports():
    (base,) = args("FROM")
    version = re.fullmatch(r"python:(3\.\d+)-slim", base).group(1)
    floor = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, version.split("."))) >= tuple(map(int, floor.split(".")))


def test_it_copies_what_pip_install_of_the_project_needs_and_nothing_ignored():
    copied = [shlex.split(rest)[:-1] for rest in args("COPY")]
    sources = {s for group in copied for s in group}
    assert {"pyproject.toml", PYPROJECT["project"]["readme"], "monitor", "config.yaml"} <= sources
    for source in sources:
        assert (ROOT / source).exists(), source
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"] == ["monitor*"]
    for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["monitor"]:  # copied with monitor/
        assert list((ROOT / "monitor").glob(pattern)), pattern
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for source in sources:
        assert not any(fnmatch.fnmatch(source, p.lstrip("/")) for p in ignored), source
    installs = [rest for rest in args("RUN") if "pip install" in rest]
    assert len(installs) == 1 and re.search(r"pip install .*\.(\s|$)", installs[0])
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in installs[0]  # as the README says
    assert "download.pytorch.org/whl/cpu" in (ROOT / "README.md").read_text()


def test_it_runs_the_daemon_as_a_non_root_user_with_sigterm():
    (user,) = args("USER")
    assert user not in ("root", "0")
    assert any("useradd --system" in rest and rest.split("&&")[0].strip().endswith(f" {user}")
               for rest in args("RUN"))
    (entrypoint,) = args("ENTRYPOINT")
    (cmd,) = args("CMD")
    assert json.loads(entrypoint) == list(PYPROJECT["project"]["scripts"])  # ["monitor"]
    (command,) = json.loads(cmd)
    assert command == "run" and command in main.commands
    assert args("STOPSIGNAL") == ["SIGTERM"]
    assert args("EXPOSE") == [str(WebSettings().port)]


def test_the_embedded_default_config_is_valid_and_keeps_the_database_in_the_volume(tmp_path):
    variables = env()
    config_option = next(p for p in main.params if p.name == "config_path")
    assert variables["MONITOR_CONFIG"] == "/etc/monitor/config.yaml" and config_option.envvar == "MONITOR_CONFIG"
    (volume,) = json.loads(args("VOLUME")[0])
    assert variables["HOME"] == volume and args("WORKDIR")[-1] == volume
    (made,) = [rest for rest in args("RUN") if "/etc/monitor/config.yaml" in rest]
    sed = re.search(r"sed '(s\|\^database: \.\*\|database: ([^|]+)\|)'", made)
    assert sed, made
    default = re.sub(r"^database: .*$", f"database: {sed.group(2)}", (ROOT / "config.yaml").read_text(),
                     flags=re.MULTILINE)
    assert default != (ROOT / "config.yaml").read_text()
    settings = load_settings(write_config(tmp_path / "config.yaml", default))
    assert str(settings.database_path) == f"{volume}/monitor.db"
