"""Fixtures for the classifier tests: a tiny Hugging Face model, the shipped model folder
(skipped when absent), its ONNX export (once per session), hub access switched off."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from classify_fakes import SHIPPED, build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    if not (SHIPPED / "monitor.json").is_file():
        pytest.skip("monitor/models/advocacy-minilm is not present")
    return SHIPPED


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory, shipped_model) -> Path:
    """A cache folder holding the shipped model's int8 export (exported once per session)."""
    from monitor.classify.onnx_engine import ensure_onnx

    cache = tmp_path_factory.mktemp("onnx-cache")
    ensure_onnx(shipped_model, cache)
    return cache


@pytest.fixture
def model_copy(tmp_path, shipped_model) -> Path:
    """A private copy of the shipped model folder, to damage."""
    dest = tmp_path / "model"
    shutil.copytree(shipped_model, dest)
    return dest


@pytest.fixture
def hub_offline(monkeypatch):
    """No hub access: offline mode on, as a user without network would have it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True, raising=False)
