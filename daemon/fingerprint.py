"""A served GGUF's identity: the SHA-256 of the file, computed once per file version (path, size, mtime).

Chat completions report it as `system_fingerprint` and the model object as
`twin.gguf_sha256`, so a client can tell which build of a twin answered it
(a rebuilt twin is swapped in while the daemon runs).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def gguf_sha256(path: Path) -> str:
    """The file's SHA-256; for an exported ONNX folder, of its files' names and contents in name order."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        known = _cache.get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            h.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    digest = h.hexdigest()
    with _lock:
        _cache[key] = digest
    return digest


def served_sha256(path: Path, lora: Path | None = None) -> str:
    """What answers: the GGUF's SHA-256, or with a LoRA adapter GGUF applied, the SHA-256 of both digests."""
    digest = gguf_sha256(path)
    if lora is None:
        return digest
    return hashlib.sha256(f"{digest}+{gguf_sha256(lora)}".encode()).hexdigest()


def system_fingerprint(sha256: str) -> str:
    return f"fp_{sha256[:12]}"
