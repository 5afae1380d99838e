"""The shipped two-head model folder, read without torch: checks that turn a missing or
corrupt folder into a clear ModelError, its ``name@version``, and a content hash (the key
of the exported ONNX model in the cache)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from monitor.errors import ModelError

META_FILE = "monitor.json"
WEIGHTS_FILE = "model.safetensors"
REQUIRED = ("config.json", META_FILE, WEIGHTS_FILE, "tokenizer.json")


def is_two_head_folder(path: str | Path) -> bool:
    return (Path(path) / META_FILE).is_file()


def read_meta(folder: str | Path) -> dict:
    path = Path(folder) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model folder {folder} has no {META_FILE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is unreadable or not JSON: {exc}") from None
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        raise ModelError(f"{path} must be a JSON object with 'name' and 'version'")
    return meta


def model_name(meta: dict) -> str:
    return f"{meta['name']}@{meta['version']}"


def check_two_head_folder(folder: str | Path) -> dict:
    """Every file present, JSON files parse, the weights file is complete. Returns monitor.json."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist")
    missing = [f for f in REQUIRED if not (folder / f).is_file()]
    if missing:
        raise ModelError(f"model folder {folder} is incomplete: missing {', '.join(missing)}")
    meta = read_meta(folder)
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{folder / 'config.json'} is unreadable or not JSON: {exc}") from None
    check_safetensors(folder / WEIGHTS_FILE)
    return meta


def check_safetensors(path: Path) -> None:
    """The header parses and the file is as long as the tensors it declares (a truncated
    download or copy is caught here, before torch sees it)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ValueError("shorter than its header")
            (n,) = struct.unpack("<Q", raw)
            if n > min(size, 100_000_000):
                raise ValueError("header length is impossible")
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelError(f"weights file {path} is corrupt: {exc}") from None
    if size != 8 + n + end:
        raise ModelError(f"weights file {path} is truncated or corrupt: {size} bytes, expected {8 + n + end}")


NOT_HASHED = ("README.md",)  # the model card: rewording it must not force a new export


def folder_hash(folder: str | Path) -> str:
    """sha256 over every file's relative name and content, in name order (the model card aside)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in NOT_HASHED):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()
