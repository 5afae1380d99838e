"""The shared engine: batching, windows for long texts, marking of texts not judged."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.classify.engine import BatchedEngine, tail_window
from monitor.classify.language import LanguageGate, letter_weight
from monitor.classify.textprep import MAX_CHARS, clean


class ToyEngine(BatchedEngine):
    """Tokens are characters; the 'network' scores the mean code point of the unpadded
    tokens, so a padding or ordering mistake changes the result."""

    def __init__(self, max_length: int = 16, batch_size: int = 4, languages=("en",), max_batch_tokens: int = 4096):
        self.name = "toy@1"
        self.meta = {"sentiment_temperature": 1.0, "advocacy_temperature": 1.0}
        self.two_head = True
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.uncertain_below = 0.5
        self.language_gate = LanguageGate(languages) if languages else None
        self.shapes: list[tuple[int, int]] = []

    def _tokenize(self, texts):
        return [[1, *(min(ord(c), 60_000) for c in t), 2] for t in texts]

    def _forward(self, ids, mask):
        self.shapes.append(ids.shape)
        assert (ids[mask == 0] == self.pad_id).all()
        mean = (ids * mask).sum(1) / mask.sum(1)
        s = np.stack([-mean / 50, np.zeros_like(mean), mean / 50], axis=1).astype(np.float32)
        return s, -s


def test_results_come_back_in_input_order_whatever_the_batching():
    texts = ["zzzz", "a", "mmmmmmmm", "b" * 30, "qq", "", "zz"]
    batched = ToyEngine(batch_size=2).classify(texts)
    single = [ToyEngine(batch_size=1).classify([t])[0] for t in texts]
    assert batched == single
    assert batched[5].status == "empty"


def test_batches_are_length_sorted_and_padded_only_to_their_longest():
    engine = ToyEngine(batch_size=2, languages=None)
    engine.classify(["x" * 10, "y", "z" * 5, "w" * 2])
    assert engine.shapes == [(2, 4), (2, 12)]  # lengths 3,4 then 7,12 (with the two special tokens)


def test_token_budget_splits_batches_of_long_windows():
    engine = ToyEngine(batch_size=64, max_length=16, max_batch_tokens=32, languages=None)
    engine.classify(["long text here!"] * 5)  # 17 tokens -> head+tail windows of 16
    assert all(n * width <= 32 for n, width in engine.shapes)
    assert sum(n for n, _ in engine.shapes) == 5


def test_a_long_text_keeps_its_conclusion():
    engine = ToyEngine(max_length=16, languages=None)
    ids = engine._tokenize(["b" * 20 + "VERDICT"])[0]
    (window,) = engine.windows(ids)  # up to twice the window: one head+tail window
    assert window[-8:-1] == [ord(c) for c in "VERDICT"] and window[0] == 1 and window[-1] == 2
    ids = engine._tokenize(["b" * 100 + "VERDICT"])[0]
    head_tail, tail = engine.windows(ids)  # much longer: a second window of the tail
    assert len(head_tail) == len(tail) == 16
    assert tail == tail_window(ids, 16) and tail[-8:-1] == [ord(c) for c in "VERDICT"]
    assert tail[1:-8] == [ord("b")] * 7


def test_windows_of_a_long_text_are_averaged():
    engine = ToyEngine(max_length=8, languages=None)
    text = "a" * 40 + "z" * 6
    s, _a = engine.text_logits([text])
    ids = engine._tokenize([text])[0]
    expected = np.mean([engine._forward(np.array([w]), np.ones((1, len(w)), dtype=np.int64))[0][0]
                        for w in engine.windows(ids)], axis=0)
    assert np.allclose(s[0], expected)


@pytest.mark.parametrize("text", [
    "",
    "   \n\t ",
    "\x00\x01\x02",
    "\u200b\u200e",
])
def test_texts_with_nothing_to_judge_are_marked_empty(text):
    (r,) = ToyEngine().classify([text])
    assert r.status == "empty" and r.uncertain and r.sentiment.probabilities == {}


@pytest.mark.parametrize("text", [
    "😀😀🔥🔥👍",
    "https://example.com/a/b?c=d http://t.co/xyz",
    "@someone @other",
    "lol",
    "Great product. Sehr gut!",  # mixed languages
    "Love it ❤️ 最高 ありがとう",  # mixed scripts
    "ok\x07 fine\x1b[31m red \ud800 surrogate",  # control characters, lone surrogate
])
def test_short_or_ambiguous_texts_are_classified_not_flagged(text):
    (r,) = ToyEngine().classify([text])
    assert r.status == "ok"
    assert set(r.sentiment.probabilities) == {"negative", "neutral", "positive"}


@pytest.mark.parametrize(("text", "lang"), [
    ("Ce produit est vraiment nul, je ne le recommande à personne.", "fr"),
    ("Das ist wirklich ein sehr schlechtes Produkt, ich empfehle es nicht.", "de"),
    ("Este producto es terrible, no lo recomiendo a nadie.", "es"),
    ("这个产品非常好，我会推荐给我的朋友们使用。", "zh"),
    ("Мне очень понравилось, всем рекомендую этот сервис.", "ru"),
])
def test_confidently_other_languages_are_marked_unsupported(text, lang):
    (r,) = ToyEngine().classify([text])
    assert (r.status, r.lang, r.uncertain) == ("unsupported_language", lang, True)
    assert r.sentiment.probabilities == {}


def test_supported_language_is_recorded_and_gate_can_be_widened_or_off():
    text = "Ce produit est vraiment nul, je ne le recommande à personne."
    assert ToyEngine(languages=("en", "fr")).classify([text])[0].status == "ok"
    assert ToyEngine(languages=None).classify([text])[0].status == "ok"
    (r,) = ToyEngine().classify(["I really love this product and I recommend it to all my friends."])
    assert (r.status, r.lang) == ("ok", "en")


def test_huge_text_is_cut_before_tokenising_and_classified():
    text = "good " * 250_000 + "but in the end AVOID IT"  # over 1 MB
    cleaned = clean(text)
    assert len(cleaned) <= MAX_CHARS + 3 and cleaned.endswith("AVOID IT")
    (r,) = ToyEngine(max_length=32).classify([text])
    assert r.status == "ok"


def test_letter_weight_ignores_placeholders_and_counts_dense_scripts():
    assert letter_weight("http @user") == 0
    assert letter_weight("ab") == 2
    assert letter_weight("好好") == 6


def _targeted_toy(**kw) -> ToyEngine:
    engine = ToyEngine(languages=None, **kw)
    engine.targeted = True
    engine._target_ids = lambda targets: [[min(ord(c), 60_000) for c in t] for t in targets]
    return engine


def test_the_brand_is_read_before_the_text_and_the_window_makes_room_for_it():
    engine = _targeted_toy(max_length=16)
    ids = [1, *range(100, 140), 2]
    for w in engine.windows(ids, [7, 8]):
        assert len(w) <= 16
        assert w[:4] == [1, 7, 8, 2] and w[-1] == 2  # [CLS] brand [SEP] ... [SEP]
    assert engine.windows([1, 5, 2], [7]) == [[1, 7, 2, 5, 2]]


def test_each_text_is_judged_toward_its_own_brand():
    engine = _targeted_toy()
    texts = ["left ab for cd", "left ab for cd", "left ab for cd"]
    a, b, plain = engine.classify(texts, ["ab", "zz", None])
    assert a.sentiment.probabilities != b.sentiment.probabilities  # the brand changes what the model reads
    assert plain == engine.classify(texts[:1])[0]  # no brand: the text alone
    untargeted = ToyEngine(languages=None)
    assert untargeted.classify(texts, ["ab", "zz", None]) == untargeted.classify(texts)  # a model that reads no brand
    with pytest.raises(ValueError):
        engine.classify(texts, ["ab"])


def test_hostile_brand_names_and_texts_get_a_result_or_a_status():
    engine = _targeted_toy(max_length=16)
    texts = ["🎉🎉🎉", "https://t.co/x", "x" * 20_000, "bonjour Acme c'est nul but the app works great", ""]
    brands = ["Acme.*(+[", "@Acme", "#acme", "", "\x00\u202e"]
    results = engine.classify(texts, brands)
    assert len(results) == 5 and results[4].status == "empty"
    assert all(r.status in ("ok", "empty", "unsupported_language") for r in results)


def test_the_language_a_source_declares_decides_when_the_detector_cannot():
    short_fr, short_en = "Super produit, merci !", "Love it!!"
    long_en = "I really love this product and I recommend it to all my friends."
    long_fr = "Ce produit est vraiment nul, je ne le recommande à personne."
    results = ToyEngine().classify([short_fr, short_fr, short_en, long_en, long_fr],
                                   langs=["fr", None, "en-US", "fr", "en"])
    assert [(r.status, r.lang) for r in results] == [
        ("unsupported_language", "fr"),  # too short to detect: the declared French holds
        ("ok", None),  # nothing declared: judged, as before
        ("ok", "en"),  # declared English: short texts go through
        ("ok", "en"),  # a client's wrong tag does not outweigh a confident detector
        ("unsupported_language", "fr"),
    ]
    assert ToyEngine(languages=("en", "fr")).classify([short_fr], langs=["fr_FR"])[0].status == "ok"


class VectorToyEngine(ToyEngine):
    """The toy network with a sentence vector: (200, mean code point, -1, 0), so a text's
    direction tells its characters."""

    embeds = True

    def _forward(self, ids, mask):
        s, a = super()._forward(ids, mask)
        mean = (ids * mask).sum(1) / mask.sum(1)
        pooled = np.stack([np.full_like(mean, 200), mean, -np.ones_like(mean), np.zeros_like(mean)], axis=1)
        return (s, a, pooled.astype(np.float32)) if self.keep_embeddings else (s, a)


def test_an_engine_with_sentence_vectors_attaches_them_packed_and_in_order():
    from monitor.vectors import unpack

    texts = ["zzzz", "", "aaaaaaaa", "b" * 30]
    engine = VectorToyEngine(batch_size=2, languages=None)
    results = engine.classify(texts)
    assert results[1].status == "empty" and results[1].embedding is None
    vectors = unpack([r.embedding for r in results if r.embedding is not None])
    assert vectors.shape == (3, 4) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[0][1] > vectors[1][1]  # "zzzz" has the higher code points, in its own row
    s, a = engine.text_logits(["zzzz"])  # the logits alone, as before
    assert s.shape == a.shape == (1, 3)
    engine.keep_embeddings = False  # the baseline: the same labels, no vectors
    plain = engine.classify(texts)
    assert all(r.embedding is None for r in plain)
    assert [(r.sentiment, r.advocacy) for r in plain] == [(r.sentiment, r.advocacy) for r in results]


def test_engines_without_sentence_vectors_give_none():
    assert all(r.embedding is None for r in ToyEngine(languages=None).classify(["hello there", "x"]))
