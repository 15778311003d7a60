"""Tiny random Llama, Qwen2, Phi-3 and GPT-2 checkpoints each train with LoRA, merge and save."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from trainer.train.lora import TARGETS
from trainer.train.run import TrainConfig, train
from twin.chatformat import PLAIN_TEMPLATE
from twin.errors import UserError

pytestmark = pytest.mark.slow  # training, conversion or a long generation: left out by `make test-fast`

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize("arch", ["llama", "qwen2", "phi3", "gpt2"])
def test_tiny_architecture_trains_merges_and_saves(
    arch: str, tiny_models: dict[str, Path], make_dataset, twin_home: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    make_dataset(arch, n_train=12, n_val=4)
    result = train(
        TrainConfig(name=arch, base=str(tiny_models[arch]), epochs=2, batch_size=4, lr=1e-2, max_length=64, log_every=1)
    )
    folder = twin_home / "twins" / arch
    assert result.steps == 6 and result.best_val_loss < result.first_val_loss

    adapter_config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert sorted(adapter_config["target_modules"]) == sorted(TARGETS[arch])
    assert adapter_config["r"] == 16 and adapter_config["lora_alpha"] == 32 and adapter_config["lora_dropout"] == 0.05

    tok = AutoTokenizer.from_pretrained(folder / "merged")
    table = tomllib.loads((folder / "twin.toml").read_text())["train"]
    assert table["architecture"] == arch
    if arch == "gpt2":  # no template of its own: the plain User:/Bot: format travels with the model
        assert tok.chat_template == PLAIN_TEMPLATE and table["chat_template"] == "plain"
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": "Ты где?"}], tokenize=False, add_generation_prompt=True
        )
        assert prompt == "User: Ты где?\nBot:"
    else:
        assert tok.chat_template == AutoTokenizer.from_pretrained(tiny_models[arch]).chat_template
        assert table["chat_template"] == "base"

    ids = tok(["Привет, как дела?", "Can you call me?"], return_tensors="pt", padding=True)
    merged = AutoModelForCausalLM.from_pretrained(folder / "merged")
    with_adapter = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_models[arch]), folder / "adapter"
    ).eval()
    with torch.no_grad():
        mask = ids["attention_mask"].bool()
        assert torch.allclose(merged(**ids).logits[mask], with_adapter(**ids).logits[mask], atol=1e-4)


def test_unknown_architecture_needs_lora_targets(tiny_models: dict[str, Path], make_dataset, tmp_path: Path) -> None:
    """An architecture without a target map is refused before any work, unless --lora-target names the projections."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, OPTConfig

    folder = tmp_path / "opt"
    tok = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    tok.save_pretrained(folder)
    config = OPTConfig(
        vocab_size=len(tok),
        hidden_size=32,
        ffn_dim=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        word_embed_proj_dim=32,
        max_position_embeddings=128,
        pad_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    make_dataset("opt", n_train=4, n_val=2)
    with pytest.raises(UserError, match=r"architecture 'opt' has no LoRA target map.*--lora-target"):
        train(TrainConfig(name="opt", base=str(folder), epochs=1, batch_size=4))
    result = train(TrainConfig(name="opt", base=str(folder), epochs=1, batch_size=4, lora_targets=["q_proj", "v_proj"]))
    assert result.merged_dir is not None and (result.merged_dir / "model.safetensors").is_file()


def test_gradient_checkpointing_trains_the_same_adapter(
    tiny_models: dict[str, Path], make_dataset, twin_home: Path
) -> None:
    """Recomputing activations changes memory, not results (dropout masks are replayed)."""
    from safetensors.torch import load_file

    adapters = {}
    for name, checkpointing in (("plain", False), ("ckpt", True)):
        make_dataset(name, n_train=8, n_val=2)
        train(
            TrainConfig(
                name=name,
                base=str(tiny_models["llama"]),
                epochs=1,
                batch_size=4,
                lr=1e-2,
                lora_dropout=0.1,
                gradient_checkpointing=checkpointing,
            )
        )
        adapters[name] = load_file(str(twin_home / "twins" / name / "adapter" / "adapter_model.safetensors"))
    assert adapters["plain"].keys() == adapters["ckpt"].keys()
    changed = 0
    for key, value in adapters["plain"].items():
        assert torch.allclose(value, adapters["ckpt"][key], atol=1e-6), key
        changed += int("lora_B" in key and float(value.abs().max()) > 0)
    assert changed > 0  # the adapters did train
