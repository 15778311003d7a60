"""Real LoRA steps on the embedded SmolLM2: validation loss falls, adapter/ and merged/ agree with each other."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch

from trainer.train.run import TrainConfig, TrainResult, train

pytestmark = pytest.mark.slow  # training, conversion or a long generation: left out by `make test-fast`

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROBES = ["Привет, как дела?", "Can you call me?", "Что делаешь вечером?"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, link_embedded_base, style_dataset) -> tuple[Path, TrainResult]:
    """One short training run on the embedded model, shared by this module's tests."""

    home = tmp_path_factory.mktemp("embedded-train")
    link_embedded_base(home)
    style_dataset(home / "twins" / "me" / "dataset", n_train=8, n_val=4)
    saved = os.environ.get("TWIN_HOME")
    os.environ["TWIN_HOME"] = str(home)
    try:
        result = train(
            TrainConfig(name="me", epochs=1, batch_size=4, lr=1e-3, max_length=64, eval_every=1, log_every=1)
        )
    finally:
        os.environ["TWIN_HOME"] = saved or ""
    return home / "twins" / "me", result


def test_validation_loss_goes_down(trained: tuple[Path, TrainResult]) -> None:
    folder, result = trained
    assert not result.interrupted and result.steps == result.total_steps == 2
    assert result.first_val_loss is not None and result.best_val_loss is not None
    assert result.best_val_loss < result.first_val_loss - 0.3
    events = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [0, 1, 2]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert all(e["val_ppl"] == pytest.approx(math.exp(e["val_loss"]), rel=1e-6) for e in evals)
    assert [e["step"] for e in events if e["event"] == "train"] == [1, 2]
    assert all(e["tokens_per_s"] > 0 and e["tokens"] > 0 for e in events if e["event"] == "train")
    assert result.best_step == min(evals, key=lambda e: e["val_loss"])["step"]


def test_outputs_and_registry(trained: tuple[Path, TrainResult]) -> None:
    folder, result = trained
    assert result.merged_dir == folder / "merged" and result.adapter_dir == folder / "adapter"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (folder / "merged" / name).is_file(), name
    assert (folder / "adapter" / "adapter_model.safetensors").is_file()
    assert not (folder / "checkpoint").exists()  # a finished run leaves no resumable state behind
    assert oct((folder / "merged" / "model.safetensors").stat().st_mode & 0o777) == "0o600"
    table = tomllib.loads((folder / "twin.toml").read_text())["train"]
    assert table["base"] == "default" and table["architecture"] == "llama"
    assert table["merged"] == "merged" and table["adapter"] == "adapter" and table["chat_template"] == "base"
    assert table["steps"] == 2 and table["train_samples"] == 8 and table["val_samples"] == 4
    assert table["best_val_loss"] == pytest.approx(result.best_val_loss, abs=1e-4)
    assert table["settings"]["lora_r"] == 16 and table["settings"]["lora_alpha"] == 32


def test_merged_logits_equal_base_plus_adapter(trained: tuple[Path, TrainResult], embedded_hf: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, _ = trained
    tok = AutoTokenizer.from_pretrained(folder / "merged")
    batch = tok(
        [
            tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in PROBES
        ],
        return_tensors="pt",
        padding=True,
    )
    merged = AutoModelForCausalLM.from_pretrained(folder / "merged")
    base = AutoModelForCausalLM.from_pretrained(embedded_hf)
    with torch.no_grad():
        base_logits = base(**batch).logits
        with_adapter = PeftModel.from_pretrained(base, folder / "adapter").eval()
        adapter_logits = with_adapter(**batch).logits
        merged_logits = merged(**batch).logits
    mask = batch["attention_mask"].bool()
    assert (adapter_logits - base_logits)[mask].abs().max() > 0.1  # training changed the model
    assert torch.allclose(merged_logits[mask], adapter_logits[mask], atol=2e-3, rtol=1e-4)
