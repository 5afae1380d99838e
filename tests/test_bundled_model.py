"""The shipped model goes wherever monitor goes: it lives inside the package
(monitor/models/advocacy-minilm), the default classifier.model names it, it is found from
any working folder, and the wheel's package data carries every file of it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import monitor
from monitor.classify import BUNDLED_DIR, DEFAULT_MODEL, bundled_model_dir, current_model_name, resolve_model
from monitor.cli import main
from monitor.config import ClassifierSettings, load_settings
from monitor.errors import ModelError

from .conftest import ROOT

PACKAGE = Path(monitor.__file__).resolve().parent
BUNDLED = PACKAGE / "models" / DEFAULT_MODEL
NEEDED = ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "monitor.json")


def bundled_name() -> str:
    meta = json.loads((BUNDLED / "monitor.json").read_text())
    return f"{meta['name']}@{meta['version']}"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """An empty working folder with no models/ in it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_the_model_is_inside_the_package_with_every_file_it_needs():
    assert BUNDLED_DIR == PACKAGE / "models"
    assert bundled_model_dir(DEFAULT_MODEL) == BUNDLED
    for name in NEEDED:
        assert (BUNDLED / name).is_file(), name
    assert not (ROOT / "models" / DEFAULT_MODEL).exists()  # one copy: the package's


def test_every_default_names_the_bundled_model():
    assert ClassifierSettings().model == DEFAULT_MODEL
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert shipped["classifier"]["model"] == DEFAULT_MODEL
    train = main.commands["model"].commands["train"]
    (out,) = [p for p in train.params if p.name == "out_dir"]
    assert Path(out.default) == Path("monitor") / "models" / DEFAULT_MODEL  # from the repository root


def test_the_bundled_model_is_found_from_a_folder_without_models(elsewhere):
    assert resolve_model(DEFAULT_MODEL, elsewhere) == str(BUNDLED)
    assert resolve_model(DEFAULT_MODEL, elsewhere / "no-such-config-folder") == str(BUNDLED)


@pytest.mark.parametrize("spelling", ["models/advocacy-minilm", "./models/advocacy-minilm"])
def test_the_old_spelling_still_means_the_bundled_model(elsewhere, spelling):
    assert resolve_model(spelling, elsewhere) == str(BUNDLED)


def test_a_local_folder_wins_over_the_bundled_model(tmp_path, elsewhere):
    config_dir = tmp_path / "etc"
    (config_dir / DEFAULT_MODEL).mkdir(parents=True)
    (config_dir / "models" / DEFAULT_MODEL).mkdir(parents=True)
    (elsewhere / "mine").mkdir()
    # relative to the config's folder first
    assert resolve_model(DEFAULT_MODEL, config_dir) == str((config_dir / DEFAULT_MODEL).resolve())
    assert resolve_model("models/advocacy-minilm", config_dir) == str((config_dir / "models" / DEFAULT_MODEL).resolve())
    # then relative to the working folder
    (elsewhere / DEFAULT_MODEL).mkdir()
    assert resolve_model(DEFAULT_MODEL, tmp_path / "nowhere") == str((elsewhere / DEFAULT_MODEL).resolve())
    assert resolve_model("mine", tmp_path / "nowhere") == str((elsewhere / "mine").resolve())


def test_names_that_are_not_bundled_stay_hub_ids_or_missing_folders(elsewhere):
    assert resolve_model("cardiffnlp/twitter-roberta-base-sentiment-latest", elsewhere) == \
        "cardiffnlp/twitter-roberta-base-sentiment-latest"
    assert resolve_model("models/cardiffnlp", elsewhere) == "models/cardiffnlp"  # no such bundled model: a hub id
    for bad in ("", ".", "..", "../models/advocacy-minilm", "advocacy-minilm/.."):
        assert bundled_model_dir(bad) is None, bad
    with pytest.raises(ModelError):
        resolve_model("./no-such-model", elsewhere)
    with pytest.raises(ModelError):
        resolve_model("../models/advocacy-minilm", elsewhere)


@pytest.mark.parametrize("model_line", ["", "classifier: {model: advocacy-minilm}\n",
                                        "classifier: {model: models/advocacy-minilm}\n"])
def test_a_config_elsewhere_loads_the_bundled_model(tmp_path, elsewhere, model_line):
    config = tmp_path / "etc" / "config.yaml"
    config.parent.mkdir()
    config.write_text("database: /var/lib/monitor/monitor.db\nbrands:\n  - name: Acme\n"
                      "    terms: {include: [acme]}\n" + model_line)
    settings = load_settings(config)
    assert resolve_model(settings.classifier.model, settings.base_dir) == str(BUNDLED)
    assert current_model_name(settings.classifier, settings.base_dir) == bundled_name()
    result = CliRunner().invoke(main, ["-c", str(config), "check"])
    assert result.exit_code == 0, result.output


def test_the_package_data_carries_every_file_of_the_model():
    """A wheel holds only what package-data names: a file the globs miss would be lost."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["monitor"]
    declared = {p for pattern in patterns for p in PACKAGE.glob(pattern) if p.is_file()}
    files = {p for p in BUNDLED.rglob("*") if p.is_file()}
    assert files and files <= declared, sorted(str(p.relative_to(PACKAGE)) for p in files - declared)
    assert {p.name for p in files} >= set(NEEDED)
    # training checkpoints (monitor/models/advocacy-minilm.epochN/) must not ride along
    assert not [p for p in patterns if p.startswith("models/") and not p.startswith(f"models/{DEFAULT_MODEL}/")]


@pytest.mark.slow
def test_demo_runs_from_any_folder_without_a_config(tmp_path, elsewhere, monkeypatch):
    """A new user after `pip install`: `monitor demo` in an empty folder. The exported model
    goes to the user's cache, never into the working folder or the package."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    before = sorted(p.name for p in BUNDLED.iterdir())
    result = CliRunner().invoke(main, ["demo", "--database", str(tmp_path / "demo.db")])
    assert result.exit_code == 0, result.output
    assert f"with {bundled_name()}" in result.output
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in BUNDLED.iterdir()) == before
    assert list((home / ".cache" / "monitor" / "onnx").glob("*.int8.onnx"))
