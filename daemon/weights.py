"""The weights a batched context loads: a q8_0 copy of a GGUF whose type llama.cpp cannot batch on the CPU.

llama.cpp's CPU backend multiplies a batch of tokens by q8_0, q4_0 and k-quant weights
with tiled kernels (llamafile's sgemm, the repacked k-quants), but by q4_1 and q5_1
weights one token at a time, so sequences decoded together share little. Measured here
on the embedded model (SmolLM2-135M, Q4_1), 2 threads, in process: 4 sequences together
gave 1.29x the tokens/s of one and 8 gave 1.62x; the same weights requantized to q8_0
gave 1.64x and 2.31x, and one sequence ran at the same speed. q8_0's steps are about a
sixteenth of q4_1's: the reply perplexity of the sample's validation set was 200.77 from
the Q4_1 file and 201.88 from its copy. With flash attention left on (llama.cpp's
"auto"), the copy's logits are also the same to the bit whatever else is in the batch, as
q4_1's are, so seeds and prefix reuse stay exact; with it off they differed by up to 0.4.
So when a model is served with `--parallel` above 1, such a file is decoded from a q8_0
copy made once in the cache (1.5 times its size); `[serve] requantize = "off"` serves the
file as it is. The fingerprint stays the file's.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from twin import llamacpp, paths
from twin.errors import UserError

log = logging.getLogger("twin.daemon")

# general.file_type (llama_ftype) of the types llama.cpp's CPU backend decodes one token at a time
UNBATCHED = {"3": "q4_1", "9": "q5_1"}
KEEP = 4  # copies kept in the cache, the most recently used


def batch_weights(path: Path, sha256: str, parallel: int, requantize: str) -> Path:
    """The file to load for `path`: itself, or its q8_0 copy (made now if missing; `path` itself if that fails)."""
    if requantize == "off" or parallel < 2:
        return path
    folder = paths.cache_dir() / "batch-weights"
    copy = folder / f"{sha256[:24]}.q8_0.gguf"
    if copy.exists():  # only a file of an UNBATCHED type ever gets one: no need to read its type again
        os.utime(copy)
        return copy
    kind = UNBATCHED.get(llamacpp.file_metadata(path).get("general.file_type", ""))
    if kind is None:
        return path
    from convert.quantize import quantize

    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{copy.name}.{os.getpid()}.part"
    log.info("making a q8_0 copy of %s (%s) for batched decoding: %s", path.name, kind, copy)
    try:
        quantize(path, part, "q8_0", requantize=True)
        os.replace(part, copy)
    except (UserError, RuntimeError) as e:
        part.unlink(missing_ok=True)
        log.warning("serving %s as it is, so batched decoding is slower: %s", path.name, e)
        return path
    for old in sorted(folder.glob("*.q8_0.gguf"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)
    return copy
