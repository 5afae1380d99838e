"""The fast default engine: the two-head model exported to ONNX, quantised to int8
(per-channel), run by ONNX Runtime on the CPU.

The exported file is cached in ``cache_dir`` under a key made of the model's name,
version and a hash of every file in its folder, so a changed model is exported again
on first use (or ahead of time by ``monitor model export``). The export runs in a child
process (it needs torch, about 1 GB, which the daemon should not keep). Loading needs
only onnxruntime and tokenizers.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import monitor
from monitor.classify.engine import BatchedEngine, model_languages
from monitor.classify.folder import check_two_head_folder, folder_hash, is_two_head_folder, model_name
from monitor.errors import ModelError

logger = logging.getLogger(__name__)

# bump when the export changes: every cached file is then rebuilt (3: the pooled sentence
# vector as a fourth output; an older file that is still loaded gives no embeddings)
EXPORT_FORMAT = "3"
POOLED_OUTPUT = "pooled"
EXPORT_TIMEOUT_S = 1800


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "monitor"


def onnx_path(folder: str | Path, cache_dir: str | Path) -> Path:
    """Where the int8 export of this exact model folder lives in the cache."""
    meta = check_two_head_folder(folder)
    key = folder_hash(folder)[:16]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{meta['name']}-{meta['version']}")
    return Path(cache_dir) / "onnx" / f"{stem}-{key}-f{EXPORT_FORMAT}.int8.onnx"


def ensure_onnx(folder: str | Path, cache_dir: str | Path, *, force: bool = False,
                log: Callable[[str], None] = logger.info) -> tuple[Path, bool]:
    """The cached int8 model for ``folder``, exported first when missing (or ``force``).
    Returns (path, whether it was exported now)."""
    folder = Path(folder).resolve()
    if not is_two_head_folder(folder):
        raise ModelError(f"{folder} is not a monitor two-head model folder (no monitor.json): "
                         "the onnx engine exports only those; use engine: torch for other models")
    out = onnx_path(folder, cache_dir)
    if out.is_file() and not force:
        return out, False
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the model cache folder {out.parent}: {exc}") from None
    log(f"exporting {model_name(check_two_head_folder(folder))} to int8 ONNX at {out} (once per model; "
        "about a minute)")
    t0 = time.monotonic()
    root = Path(monitor.__file__).resolve().parent.parent  # so `-m monitor...` imports this copy
    cmd = [sys.executable, "-m", "monitor.classify.onnx_export", str(folder), str(out.resolve())]
    try:
        proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                errors="replace")
    except OSError as exc:
        raise ModelError(f"cannot start the ONNX export: {exc}") from None
    lines: list[str] = []
    with proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip()
            if line:
                lines.append(line)
                if not line.startswith((" ", "Traceback")) and len(lines) < 50:
                    log(f"  {line}")
        try:
            rc = proc.wait(timeout=EXPORT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ModelError("the ONNX export did not finish in time") from None
    if rc != 0 or not out.is_file():
        tail = "; ".join(lines[-3:]) or f"exit code {rc}"
        raise ModelError(f"exporting {folder} to ONNX failed: {tail}")
    stem = out.name.rsplit("-", 2)[0]
    for old in out.parent.glob(f"{stem}-*.int8.onnx"):
        if old != out and old.name.rsplit("-", 2)[0] == stem:
            old.unlink(missing_ok=True)  # an earlier export of this model name
    log(f"ONNX int8 model ready: {out} ({out.stat().st_size / 1e6:.0f} MB, {time.monotonic() - t0:.0f}s)")
    return out, True


class OnnxClassifier(BatchedEngine):
    """``OnnxClassifier(folder, cache_dir=..., threads=2)``: same results as TorchClassifier
    on the same folder, up to int8 rounding."""

    def __init__(self, model: str | Path, *, cache_dir: str | Path | None = None, threads: int = 2,
                 batch_size: int = 64, uncertain_below: float = 0.5, max_length: int | None = None,
                 languages: Sequence[str] | None = None) -> None:
        folder = Path(model)
        if not folder.is_dir():
            raise ModelError(f"the onnx engine needs a local model folder; {str(model)!r} is not one "
                             "(for a Hugging Face hub model use engine: torch)")
        self.meta = check_two_head_folder(folder)
        self.name = model_name(self.meta)
        self.two_head = True
        self.targeted = bool(self.meta.get("targeted"))
        self.batch_size = batch_size
        self.uncertain_below = uncertain_below
        self.language_gate = model_languages(self.meta, languages, default=("en",))
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # tokenizer.json corrupt: a Rust error of its own type
            raise ModelError(f"cannot load the tokenizer of {folder}: {exc}") from None
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.pad_id = int(config.get("pad_token_id") or 0)
        self.max_length = min(max_length or int(self.meta.get("max_length", 128)),
                              int(config.get("max_position_embeddings", 512)))
        self.path, _ = ensure_onnx(folder, cache_dir or default_cache_dir())
        self.session = self._session(self.path, threads)
        names = [o.name for o in self.session.get_outputs()]
        self.embeds = POOLED_OUTPUT in names
        self._heads = [n for n in names if n != POOLED_OUTPUT]

    @staticmethod
    def _session(path: Path, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # no busy-waiting between operators: on a shared server (the usual place for a
        # daemon) spinning threads fight other processes; measured faster there, and idle
        # CPU stays idle
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged cache file: drop it, the next load exports again
            path.unlink(missing_ok=True)
            raise ModelError(f"cached ONNX model {path} could not be loaded ({exc}); it was removed and will be "
                             "exported again") from None

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=True)]

    def _target_ids(self, targets: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(targets, add_special_tokens=False)]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        wanted = [*self._heads, POOLED_OUTPUT] if self._gives_vectors() else self._heads
        return tuple(self.session.run(wanted, {"input_ids": ids, "attention_mask": mask}))
