"""twin.llamacpp: every model twin opens loads without llama.cpp's AMX weight buffer, which crashes it."""

from __future__ import annotations

import subprocess
import sys

from convert.llama_runtime import llama_log
from twin import llamacpp
from twin.embedded import embedded_gguf


def test_a_model_opened_by_twin_decodes_a_prompt_outside_the_amx_buffer() -> None:
    with llama_log() as lines:
        llm = llamacpp.open_llama(embedded_gguf(), n_ctx=64, n_threads=1, verbose=True)
    try:
        llm.eval(llm.tokenize(b"Hello there, how are you doing today?"))  # a pass of several tokens
        assert llm.n_tokens > 2
    finally:
        llm.close()
    assert not [line for line in lines if "AMX model buffer" in line]
    assert llamacpp.runtime().llama_model_default_params().use_extra_bufts is not llamacpp.built_with_amx()


def test_the_daemons_weights_load_outside_the_amx_buffer() -> None:
    # In a fresh interpreter: the guard is applied when twin.llamacpp first hands out the module.
    code = (
        "from twin import llamacpp\n"
        "from twin.embedded import embedded_gguf\n"
        "w = llamacpp.load_weights(embedded_gguf())\n"
        "w.close()\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "AMX model buffer" not in run.stderr
    assert "model buffer size" in run.stderr  # the log was read: llama.cpp reports each buffer it loads into
