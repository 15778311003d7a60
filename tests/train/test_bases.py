"""Base model resolution: the embedded model's HF copy, hub ids from the cache while offline, local folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.tiny_models import random_gpt2
from trainer.bases import SHORT_NAMES, resolve_base
from twin import embedded
from twin.errors import UserError


def test_embedded_copy_matches_the_gguf(base_in_cache: Path) -> None:
    """The dequantized HF copy predicts what llama.cpp predicts from the GGUF itself."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_base("default")
    assert folder == base_in_cache
    assert resolve_base("smollm2") == folder
    config_mtime = (folder / "config.json").stat().st_mtime_ns

    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert getattr(model.config, "quantization_config", None) is None
    ids = tok("The capital of France is Paris. The capital of Germany is")["input_ids"]
    with torch.no_grad():
        hf_logits = model(torch.tensor([ids])).logits[0].numpy()

    from twin import llamacpp

    llm = llamacpp.open_llama(embedded.embedded_gguf(), n_ctx=64, logits_all=True, verbose=False, n_threads=2)
    llm.eval(ids)
    cpp_logits = np.array(llm.scores[: len(ids)])
    assert hf_logits.shape == cpp_logits.shape
    assert (hf_logits.argmax(-1) == cpp_logits.argmax(-1)).mean() >= 0.9
    corr = np.corrcoef(hf_logits.ravel(), cpp_logits.ravel())[0, 1]
    assert corr > 0.99
    # A second resolution returns the cached copy untouched.
    assert resolve_base("default") == folder
    assert (folder / "config.json").stat().st_mtime_ns == config_mtime


def _fake_hub_cache(root: Path, repo: str) -> Path:
    """An HF hub cache entry laid out as huggingface_hub writes it, holding a tiny GPT-2."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = root / ("models--" + repo.replace("/", "--"))
    snapshot = entry / "snapshots" / commit
    random_gpt2(snapshot, n_layer=1, n_head=2, n_embd=8, vocab_size=64, n_positions=32)
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(commit)
    return snapshot


def test_hub_id_from_cache_while_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = _fake_hub_cache(tmp_path / "hub", SHORT_NAMES["distilgpt2"])
    assert resolve_base("distilgpt2") == snapshot.resolve()
    assert resolve_base(SHORT_NAMES["distilgpt2"]) == snapshot.resolve()


@pytest.mark.parametrize("base", ["qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct", "someone/not-downloaded"])
def test_hub_id_not_downloaded_while_offline(base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError) as e:
        resolve_base(base)
    message = str(e.value)
    assert "HF_HUB_OFFLINE" in message and "hf download" in message
    assert SHORT_NAMES.get(base, base) in message


def test_local_directory(tmp_path: Path) -> None:
    good = tmp_path / "model"
    good.mkdir()
    (good / "config.json").write_text("{}")
    assert resolve_base(str(good)) == good.resolve()

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=r"no config\.json"):
        resolve_base(str(empty))
    with pytest.raises(UserError, match="not a directory"):
        resolve_base(str(tmp_path / "missing"))
    (tmp_path / "file.bin").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        resolve_base(str(tmp_path / "file.bin"))


def test_nonsense_name() -> None:
    with pytest.raises(UserError, match="unknown base model"):
        resolve_base("what is this?")
