"""Loading models: any Hugging Face sequence classifier (a tiny one built by the test),
hub ids without network, and missing or corrupt model folders."""

from __future__ import annotations

import logging
import shutil
import time

import pytest
from classify_fakes import build_tiny_model

from monitor.classify import build_classifier, current_model_name, resolve_model
from monitor.classify.folder import check_two_head_folder
from monitor.classify.onnx_engine import OnnxClassifier
from monitor.classify.torch_engine import TorchClassifier
from monitor.config import ClassifierSettings
from monitor.errors import ModelError

TEXTS = ["great product, love it", "", "awful service, avoid", "the app is not very good", "x" * 5000,
         "😀😀", "Ce produit est vraiment nul, je ne le recommande à personne."]


def test_torch_engine_loads_a_tiny_hf_model_from_a_folder(tiny_model):
    c = TorchClassifier(tiny_model, batch_size=2)
    assert c.name == "tiny-bert@local" and not c.two_head and c.language_gate is None
    results = c.classify(TEXTS)
    assert len(results) == len(TEXTS)
    assert results[1].status == "empty"
    ok = [r for r in results if r.status == "ok"]
    assert len(ok) == 6  # any language: a generic model gives no gate unless configured
    for r in ok:
        assert set(r.sentiment.probabilities) == {"negative", "neutral", "positive"}
        assert abs(sum(r.sentiment.probabilities.values()) - 1) < 1e-3
        assert r.advocacy.label == "none" and r.advocacy.probabilities == {}
        assert r.embedding is None  # a generic hub model gives no sentence vector
    assert results == [c.classify([t])[0] for t in TEXTS]  # order and padding do not matter
    assert len({r.sentiment.probabilities["positive"] for r in ok}) > 1  # outputs depend on the text


def test_generic_labels_are_mapped_by_name(tmp_path):
    folder = build_tiny_model(tmp_path / "stars", labels=("1 star", "2 stars", "3 stars", "4 stars", "5 stars"))
    (r,) = TorchClassifier(folder).classify(["love it"])
    assert set(r.sentiment.probabilities) == {"negative", "neutral", "positive"}
    two = build_tiny_model(tmp_path / "binary", labels=("NEGATIVE", "POSITIVE"))
    (r,) = TorchClassifier(two, languages=["en"]).classify(["love it"])
    assert set(r.sentiment.probabilities) == {"negative", "positive"}
    odd = build_tiny_model(tmp_path / "odd", labels=("toxic", "clean"))
    with pytest.raises(ModelError, match="cannot map"):
        TorchClassifier(odd)


def test_config_points_the_torch_engine_at_a_folder(tiny_model):
    settings = ClassifierSettings(engine="torch", model=str(tiny_model))
    c = build_classifier(settings, tiny_model.parent)
    assert isinstance(c, TorchClassifier) and c.classify(["good"])[0].status == "ok"
    assert current_model_name(settings, tiny_model.parent) is None  # only loading tells a generic model's name


def test_hub_id_without_network_is_a_quick_clear_model_error(hub_offline):
    t0 = time.monotonic()
    with pytest.raises(ModelError, match="network access"):
        TorchClassifier("someone/no-such-sentiment-model")
    assert time.monotonic() - t0 < 60  # not a hang on retries (a generous bound, not a timing test)


def test_daemon_survives_a_model_that_cannot_load_and_retries(tmp_path, hub_offline, caplog):
    from monitor.config import Settings
    from monitor.daemon import Daemon
    from monitor.store import Store

    settings = Settings.model_validate({"database": str(tmp_path / "m.db"), "base_dir": tmp_path,
                                        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
                                        "classifier": {"engine": "torch", "model": "someone/no-such-model"}})
    calls = []

    def factory():
        calls.append(1)
        return build_classifier(settings.classifier, tmp_path)

    daemon = Daemon(settings, Store(settings.database_path), sources=[], classifier_factory=factory, channels={})
    with caplog.at_level(logging.ERROR):
        daemon.classify_job()
        daemon.classify_job()
    assert len(calls) == 2  # tried again on the next run
    assert "network access" in caplog.text


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_missing_model_folder(tmp_path, engine):
    with pytest.raises(ModelError, match="does not exist"):
        build_classifier(ClassifierSettings(engine=engine, model="./models/nothing-here"), tmp_path)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:1_000_000]), "truncated"),
    (lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 4), "corrupt"),
    (lambda f: (f / "config.json").unlink(), "missing config.json"),
    (lambda f: (f / "config.json").write_text("{not json"), "not JSON"),
    (lambda f: (f / "monitor.json").write_text("[]"), "name"),
    (lambda f: (f / "tokenizer.json").unlink(), "missing tokenizer.json"),
])
@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_corrupt_two_head_folder_is_a_clear_model_error(model_copy, tmp_path, damage, message, engine):
    damage(model_copy)
    with pytest.raises(ModelError, match=message):
        build_classifier(ClassifierSettings(engine=engine, model=str(model_copy)), tmp_path,
                         cache_dir=tmp_path / "cache")


def test_folder_without_monitor_json_is_not_taken_for_the_shipped_format(model_copy, tmp_path):
    (model_copy / "monitor.json").unlink()
    with pytest.raises(ModelError):
        OnnxClassifier(model_copy, cache_dir=tmp_path)
    with pytest.raises(ModelError):  # a BertModel checkpoint with no classification head labels
        TorchClassifier(model_copy)


def test_check_and_name_of_the_shipped_folder(shipped_model, tmp_path):
    meta = check_two_head_folder(shipped_model)
    settings = ClassifierSettings(model=str(shipped_model))
    assert current_model_name(settings, tmp_path) == f"{meta['name']}@{meta['version']}"
    assert resolve_model("models/advocacy-minilm", shipped_model.parent.parent) == str(shipped_model.resolve())


def test_empty_folder(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelError):
        TorchClassifier(tmp_path / "m")
    shutil.rmtree(tmp_path / "m")
