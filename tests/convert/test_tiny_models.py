"""Every supported architecture, as a tiny random model: HF → f32 GGUF whose llama.cpp logits and tokens match transformers'."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from convert.pipeline import ConvertConfig, convert
from twin.chatformat import PLAIN_TEMPLATE

pytestmark = pytest.mark.slow  # training, conversion or a long generation: left out by `make test-fast`

MIXED = "Привет, как дела? Hello there, how are you doing? 😀🎉 Это mixed строка с emoji 👍🏽, ёжиком и цифрами 2024."
# f32 GGUF vs transformers in fp32: only summation order and ggml's f16 GELU table (GPT-2) differ.
REL_TOLERANCE = 2e-3  # of the largest logit
MIN_TOP1 = 0.95

# kind -> (general.architecture, tokenizer.ggml.model, tokenizer.ggml.pre)
EXPECTED = {
    "llama-spm": ("llama", "llama", None),
    "llama-bpe": ("llama", "gpt2", "smollm"),
    "phi3": ("phi3", "llama", None),
    "qwen2": ("qwen2", "gpt2", "qwen2"),
    "gpt2": ("gpt2", "gpt2", "gpt-2"),
}


def _field(reader: GGUFReader, key: str):  # type: ignore[no-untyped-def]
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def _llama(path: Path):  # type: ignore[no-untyped-def]
    from twin import llamacpp

    # f32 KV cache: llama.cpp's default f16 cache would add its own rounding to what is compared.
    return llamacpp.open_llama(path, n_ctx=128, logits_all=True, type_k=0, type_v=0, n_threads=1, verbose=False)


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_f32_gguf_matches_transformers(kind: str, tiny_model, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model(kind)
    out = tmp_path / "out" / "model.gguf"
    result = convert(ConvertConfig(model_dir=folder, quant="f32", output=out))

    assert result.path == out and result.quant == "f32"
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.gguf"]  # no temporary file left
    assert result.verification.top1_agreement >= 0.99

    arch, tokenizer_model, pre = EXPECTED[kind]
    reader = GGUFReader(str(out))
    assert _field(reader, "general.architecture") == arch
    assert _field(reader, "tokenizer.ggml.model") == tokenizer_model
    assert _field(reader, "tokenizer.ggml.pre") == pre
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert _field(reader, "tokenizer.chat_template") == (tokenizer.chat_template or PLAIN_TEMPLATE)
    assert _field(reader, "tokenizer.ggml.eos_token_id") == tokenizer.eos_token_id
    del reader

    ids = tokenizer.encode(MIXED)
    llm = _llama(out)
    try:
        assert llm.tokenize(MIXED.encode("utf-8"), add_bos=True, special=True) == ids
        llm.eval(ids)
        ours = np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    with torch.inference_mode():
        reference = model(torch.tensor([ids])).logits[0].numpy()

    scale = float(np.abs(reference).max())
    assert float(np.abs(ours - reference).max()) <= REL_TOLERANCE * max(scale, 1.0)
    assert float((ours.argmax(axis=1) == reference.argmax(axis=1)).mean()) >= MIN_TOP1


def test_phi3_twin_name_gets_llama_cpp_phi3_marker(tiny_model, tmp_path: Path) -> None:
    """llama.cpp strips whitespace after Phi-3's markers only when general.name says phi3: a twin's name gets the marker."""
    folder = tmp_path / "anna"
    shutil.copytree(tiny_model("phi3"), folder)
    result = convert(ConvertConfig(model_dir=folder, quant="f32", output=tmp_path / "anna.gguf"))
    reader = GGUFReader(str(result.path))
    assert _field(reader, "general.name") == "anna (phi3)"
    assert "scores from merge ranks (no tokenizer.model)" in result.notes


def test_phi3_in_the_name_of_another_model_is_neutralised(tiny_model, tmp_path: Path) -> None:
    folder = tmp_path / "phi3-fan"
    shutil.copytree(tiny_model("llama-bpe"), folder)
    result = convert(ConvertConfig(model_dir=folder, quant="f32", output=tmp_path / "fan.gguf"))
    assert _field(GGUFReader(str(result.path)), "general.name") == "phi_3-fan"


def test_f16_and_quantized_outputs_are_smaller_and_verified(tiny_model, tmp_path: Path) -> None:
    f16 = convert(ConvertConfig(model_dir=tiny_model("llama-bpe"), quant="f16", output=tmp_path / "m-f16.gguf"))
    q8 = convert(ConvertConfig(model_dir=tiny_model("llama-bpe"), quant="q8_0", output=tmp_path / "m-q8.gguf"))
    assert f16.verification.top1_agreement >= 0.9
    assert q8.size_bytes < f16.size_bytes
    assert _field(GGUFReader(str(q8.path)), "general.file_type") == 7  # LLAMA_FTYPE_MOSTLY_Q8_0
    assert not list(tmp_path.glob(".*"))  # the f16 intermediate and temporary files are gone


def test_sharded_bf16_checkpoint(tiny_model, tmp_path: Path) -> None:
    """Trainers save bf16, and big models in shards with an index: both are read without the safetensors mmap."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = tiny_model("qwen2")
    folder = tmp_path / "bf16"
    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="100KB")
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(folder)
    assert (folder / "model.safetensors.index.json").is_file() and len(list(folder.glob("*.safetensors"))) > 1

    result = convert(ConvertConfig(model_dir=folder, quant="f32", output=tmp_path / "bf16.gguf"))
    assert result.verification.top1_agreement >= 0.99
    assert result.verification.max_abs_diff <= REL_TOLERANCE * max(result.verification.logit_scale, 1.0)
