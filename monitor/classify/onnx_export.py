"""Model folder -> ONNX (fp32, every head's logits and the mean-pooled sentence vector,
dynamic batch and sequence axes) -> int8 (onnxruntime dynamic quantisation, per-channel weights).

Run as ``python -m monitor.classify.onnx_export MODEL_DIR OUT.onnx``: the engine starts it
in a child process so the torch memory it needs is returned when it ends.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

OUTPUTS = ("sentiment_logits", "advocacy_logits", "stance_logits", "pooled")  # pooled: the embedding
INPUTS = ("input_ids", "attention_mask")
OPSET = 17


def export_fp32(model_dir: Path, out: Path) -> None:
    import torch

    from monitor.classify import network

    model, tokenizer, _meta = network.load(model_dir)

    class Heads(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids, attention_mask, with_pooled=True)

    sample = tokenizer(["a short one", "a somewhat longer sample text for tracing"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS} | {name: {0: "batch"} for name in OUTPUTS}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(Heads(model).eval(), (sample["input_ids"], sample["attention_mask"]), str(out),
                          input_names=list(INPUTS), output_names=list(OUTPUTS), dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)


def quantize_int8(src: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(out), per_channel=True, weight_type=QuantType.QInt8)


def export(model_dir: Path, out: Path, log=print) -> None:
    """Write the int8 model to ``out`` (atomically: a partial file never has that name)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        t0 = time.monotonic()
        log(f"exporting {model_dir} to ONNX (fp32)")
        export_fp32(model_dir, fp32)
        log(f"exported {fp32.stat().st_size / 1e6:.0f} MB in {time.monotonic() - t0:.1f}s; "
            "quantising to int8 (per-channel)")
        t1 = time.monotonic()
        quantize_int8(fp32, int8)
        log(f"quantised to {int8.stat().st_size / 1e6:.0f} MB in {time.monotonic() - t1:.1f}s")
        os.replace(int8, out)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.ERROR)  # quantize_dynamic's advice about pre-processing is not for users
    if len(argv) != 2:
        print("usage: python -m monitor.classify.onnx_export MODEL_DIR OUT.onnx", file=sys.stderr)
        return 2
    export(Path(argv[0]), Path(argv[1]), log=lambda msg: print(msg, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
