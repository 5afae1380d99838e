"""The ONNX int8 engine on the shipped model folder: export, cache, parity with torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.classify.onnx_engine import OnnxClassifier, ensure_onnx, onnx_path
from monitor.errors import ModelError

TEXTS = [
    "Acme support answered in ten minutes and fixed it. Recommending them to everyone.",
    "Stay away from Acme, they lost our data and never replied.",
    "Acme released version 3 today.",
    "",
    "ok",
    "This dress is lovely. " * 60 + "But it fell apart after one wash, I am returning it and would not buy again.",
]


@pytest.fixture(scope="module")
def engines(shipped_model, onnx_cache):
    from monitor.classify.torch_engine import TorchClassifier

    return OnnxClassifier(shipped_model, cache_dir=onnx_cache), TorchClassifier(shipped_model)


def test_onnx_int8_matches_torch_fp32(engines):
    onnx, torch_engine = engines
    assert onnx.name == torch_engine.name == "{name}@{version}".format(**onnx.meta)
    a, b = onnx.classify(TEXTS), torch_engine.classify(TEXTS)
    assert [r.status for r in a] == [r.status for r in b] == ["ok", "ok", "ok", "empty", "ok", "ok"]
    # the clear texts get the same labels; int8 moves a trained model's probabilities a little
    # (agreement over thousands of texts is measured by `monitor model bench`)
    for x, y in zip(a[:3], b[:3], strict=True):
        assert (x.sentiment.label, x.advocacy.label) == (y.sentiment.label, y.advocacy.label)
    for x, y in zip(a, b, strict=True):
        for k, p in x.sentiment.probabilities.items():
            assert abs(p - y.sentiment.probabilities[k]) < 0.15
        for k, p in x.advocacy.probabilities.items():
            assert abs(p - y.advocacy.probabilities[k]) < 0.15


def test_onnx_logits_match_torch_closely_for_batches_of_mixed_lengths(engines):
    onnx, torch_engine = engines
    texts = [t for t in TEXTS if t]
    int8, fp32 = onnx.text_logits(texts), torch_engine.text_logits(texts)
    assert [z.shape for z in int8] == [z.shape for z in fp32] == [(len(texts), 3), (len(texts), 3), (len(texts), 5)]
    for a, b in zip(int8, fp32, strict=True):  # sentiment, advocacy, stance
        assert np.abs(a - b).max() < 1.0


def test_both_tokenizers_give_the_same_ids(engines):
    onnx, torch_engine = engines
    texts = ["Héllo WORLD!! http @user #tag 😀", "naïve café – “quotes”", "x" * 300]
    assert onnx._tokenize(texts) == torch_engine._tokenize(texts)


def test_batch_results_match_single_results(engines):
    # int8 dynamic quantisation scales activations per batch, so batch-mates move the
    # probabilities by a little; never by more than this
    onnx, torch_engine = engines
    for engine, tolerance in ((onnx, 0.1), (torch_engine, 1e-4)):
        batched = engine.classify(TEXTS)
        for b, s in zip(batched, [engine.classify([t])[0] for t in TEXTS], strict=True):
            assert (b.status, b.lang) == (s.status, s.lang)
            for k, p in b.sentiment.probabilities.items():
                assert abs(p - s.sentiment.probabilities[k]) <= tolerance


def test_export_is_cached_and_keyed_by_the_folder_content(shipped_model, onnx_cache, model_copy):
    path, exported = ensure_onnx(shipped_model, onnx_cache)
    assert not exported and path.is_file() and path == onnx_path(shipped_model, onnx_cache)
    assert onnx_path(model_copy, onnx_cache) == path  # same files, same key
    meta = json.loads((model_copy / "monitor.json").read_text())
    meta["version"] = "2"
    (model_copy / "monitor.json").write_text(json.dumps(meta))
    assert onnx_path(model_copy, onnx_cache) != path
    with (model_copy / "tokenizer_config.json").open("a") as f:
        f.write(" ")
    changed = onnx_path(model_copy, onnx_cache)
    assert changed != path and "advocacy-minilm-2-" in changed.name


def test_a_corrupt_cached_export_is_removed_with_a_clear_error(tmp_path, shipped_model, onnx_cache):
    cache = tmp_path / "cache"
    target = onnx_path(shipped_model, cache)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="will be exported again"):
        OnnxClassifier(shipped_model, cache_dir=cache)
    assert not target.exists()


def test_onnx_engine_refuses_hub_ids_and_plain_folders(tmp_path, tiny_model):
    with pytest.raises(ModelError, match="engine: torch"):
        OnnxClassifier("cardiffnlp/twitter-roberta-base-sentiment-latest", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="monitor.json"):
        OnnxClassifier(tiny_model, cache_dir=tmp_path)


def test_onnx_is_the_default_engine_and_export_command_reports_the_cache(tmp_path, shipped_model, onnx_cache):
    import yaml
    from classify_fakes import ROOT
    from click.testing import CliRunner

    from monitor.cli import main
    from monitor.config import ClassifierSettings

    assert ClassifierSettings().engine == "onnx"
    assert yaml.safe_load((ROOT / "config.yaml").read_text())["classifier"]["engine"] == "onnx"
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"database": "m.db", "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}],
                                  "classifier": {"model": str(shipped_model), "cache_dir": str(onnx_cache)}}))
    out = CliRunner().invoke(main, ["-c", str(config), "model", "export"])
    assert out.exit_code == 0, out.output
    assert "up to date" in out.stdout and str(onnx_path(shipped_model, onnx_cache)) in out.stdout


def test_bad_inputs_through_the_real_engine(engines):
    onnx, _ = engines
    texts = ["", "x" * 1_000_000, "😀" * 5000, "ok \x00\x1b[2J \ud800\udfff\ud83d fine", "http://a.b/c " * 1000,
             "Acme \u202eevil\u202c text", "Acme 最高 ありがとう great", "\ufeff\ufffd" * 10]
    results = onnx.classify(texts)
    assert len(results) == len(texts)
    assert results[0].status == "empty"
    assert all(r.status in ("ok", "empty") for r in results)  # none of these is confidently another language
    assert all(r.model == onnx.name for r in results)


def test_the_shipped_model_reads_each_brand_and_survives_hostile_input(engines):
    onnx, torch_engine = engines
    texts = ["🔥🔥🔥😡", "https://t.co/abc https://bit.ly/x", "great " * 4000, "Acme est nul, but BigCo is great",
             "", "Switched from BigCo to Acme, never looking back."]
    brands = ["Acme (.*+?[", "Acme", "", "Acme\x00\u202e", "Acme", "BigCo"]
    for engine in (onnx, torch_engine):
        assert engine.targeted == bool(engine.meta.get("targeted"))
        results = engine.classify(texts, brands)
        assert len(results) == len(texts) and results[4].status == "empty"
        assert all(r.status in ("ok", "empty", "unsupported_language") for r in results)
        ok = [r for r in results if r.status == "ok"]
        assert all(abs(sum(r.advocacy.probabilities.values()) - 1) < 1e-3 for r in ok)
        if engine.targeted:  # one post, two brands: a stance toward each
            leaving, joining = engine.classify([texts[5]] * 2, ["BigCo", "Acme"])
            assert leaving.advocacy.probabilities != joining.advocacy.probabilities
            assert all(r.stance in (-2, -1, 0, 1, 2) for r in ok)


def test_both_engines_keep_the_sentence_vector_of_each_judged_text(engines):
    from monitor.vectors import unpack

    onnx, torch_engine = engines
    a, b = onnx.classify(TEXTS), torch_engine.classify(TEXTS)
    assert [r.embedding is None for r in a] == [r.embedding is None for r in b] == [
        False, False, False, True, False, False]  # the empty text has none
    va = unpack([r.embedding for r in a if r.embedding])
    vb = unpack([r.embedding for r in b if r.embedding])
    assert va.shape == vb.shape == (5, 384)
    assert (va * vb).sum(axis=1).min() > 0.95  # int8 weights move the direction only a little
    sims = vb @ vb.T
    assert sims[0, 1] < 0.99  # different texts, different vectors


def test_an_export_without_the_sentence_vector_is_not_taken_from_the_cache(shipped_model, onnx_cache):
    from monitor.classify import onnx_engine

    path = onnx_path(shipped_model, onnx_cache)
    assert path.name.endswith(f"-f{onnx_engine.EXPORT_FORMAT}.int8.onnx") and onnx_engine.EXPORT_FORMAT >= "3"
    engine = OnnxClassifier(shipped_model, cache_dir=onnx_cache)
    assert engine.embeds and onnx_engine.POOLED_OUTPUT in [o.name for o in engine.session.get_outputs()]
    engine.embeds = False  # as an engine on an older export (no such output) is: labels, no vectors
    (r,) = engine.classify([TEXTS[0]])
    assert r.status == "ok" and r.embedding is None
