"""`--quant adapter`: a PEFT LoRA written as llama.cpp's adapter GGUF, applied to the embedded base's own Q4_1 file.

The reference is the PEFT model in transformers (the base dequantized from that very
file, with the LoRA on top): llama.cpp with the adapter must give its logits, where
the base file alone must not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert.architectures import architecture_for
from convert.lora_gguf import lora_path, unsupported, write_lora_gguf
from twin import embedded

pytestmark = pytest.mark.slow  # a model in transformers and two in llama.cpp

TEXT = "<|im_start|>user\nare you coming tonight?<|im_end|>\n<|im_start|>assistant\nyeah, running late, save me a seat"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def random_lora(embedded_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, list[int]]:
    """A LoRA with random A and B on every projection (big enough to move the logits), saved as PEFT saves it;
    the logits of the PEFT model on TEXT, and TEXT's tokens."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(embedded_hf), dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.5)
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    peft_model.save_pretrained(folder)
    ids = AutoTokenizer.from_pretrained(str(embedded_hf))(TEXT)["input_ids"]
    with torch.inference_mode():
        logits = peft_model(torch.tensor([ids])).logits[0].numpy()
    return folder, logits, ids


def llama_logits(tokens: list[int], lora: Path | None) -> np.ndarray:
    from twin import llamacpp

    llm = llamacpp.open_llama(
        embedded.embedded_gguf(),
        lora_path=None if lora is None else str(lora),
        n_ctx=128,
        logits_all=True,
        n_threads=1,
        verbose=False,
    )
    try:
        llm.eval(tokens)
        return np.array(llm.scores[: len(tokens)])
    finally:
        llm.close()


def test_the_adapter_gguf_gives_the_peft_models_logits_on_the_base_file(random_lora, embedded_hf, tmp_path):
    folder, reference, tokens = random_lora
    config = json.loads((embedded_hf / "config.json").read_text())
    arch = architecture_for(config["architectures"][0])
    assert unsupported(folder, arch) == ""
    out = lora_path(tmp_path / "model-adapter.gguf")
    assert out.name == "model-adapter.lora.gguf"
    size = write_lora_gguf(folder, config, arch, out)
    assert size == out.stat().st_size > 0

    with_adapter = llama_logits(tokens, out)
    base_only = llama_logits(tokens, None)
    adapter_error = np.abs(with_adapter - reference).mean()
    base_error = np.abs(base_only - reference).mean()
    # The LoRA moves the logits (mean |change| about 2) far more than llama.cpp's Q4_1 arithmetic (q8 activations)
    # differs from torch's dequantized float32 (about 0.2, with or without the adapter).
    assert base_error > 1.0, base_error
    assert adapter_error < base_error / 4, (adapter_error, base_error)
    agree = (with_adapter.argmax(axis=1) == reference.argmax(axis=1)).mean()
    assert agree >= 0.9, agree


def test_an_adapter_llama_cpp_cannot_hold_is_named(random_lora, embedded_hf, tmp_path):
    folder, _, _ = random_lora
    arch = architecture_for(json.loads((embedded_hf / "config.json").read_text())["architectures"][0])
    dora = tmp_path / "dora"
    dora.mkdir()
    (dora / "adapter_model.safetensors").write_bytes((folder / "adapter_model.safetensors").read_bytes())
    peft = json.loads((folder / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps(peft | {"use_dora": True}))
    assert "DoRA" in unsupported(dora, arch)
    (dora / "adapter_config.json").write_text(json.dumps(peft | {"modules_to_save": ["lm_head"]}))
    assert "fully trained modules" in unsupported(dora, arch)
    assert "gpt2" in unsupported(folder, architecture_for("GPT2LMHeadModel"))


def test_the_daemon_serves_a_twin_with_its_adapter(random_lora, embedded_hf, twin_home, own_daemon):
    """A twin whose [model] names the base's file and an adapter: the daemon applies the adapter to what it serves."""
    import shutil

    import openai

    from twin import registry

    folder, _, _ = random_lora
    config = json.loads((embedded_hf / "config.json").read_text())
    twin = twin_home / "twins" / "ada"
    twin.mkdir(parents=True)
    shutil.copyfile(embedded.embedded_gguf(), twin / "model-adapter.gguf")
    write_lora_gguf(folder, config, architecture_for(config["architectures"][0]), twin / "model-adapter.lora.gguf")
    registry.update(
        "ada", "model", {"gguf": "model-adapter.gguf", "lora": "model-adapter.lora.gguf", "quant": "adapter"}
    )

    client = openai.OpenAI(base_url=own_daemon().url, api_key="-", max_retries=0)
    ask = {"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}
    twin_reply = client.completions.create(model="ada", **ask)
    base_reply = client.completions.create(model=embedded.MODEL_ID, **ask)
    # The same weights file answers both; only the adapter tells them apart, in the text and the fingerprint.
    assert twin_reply.choices[0].text != base_reply.choices[0].text, twin_reply.choices[0].text
    assert twin_reply.system_fingerprint != base_reply.system_fingerprint
    digests = [client.models.retrieve(m).model_extra["twin"]["gguf_sha256"] for m in ("ada", embedded.MODEL_ID)]
    assert digests[0] != digests[1] and all(len(d) == 64 for d in digests)

    # The twin's logits do not depend on what else the daemon decodes in the same step (the adapter is q8_0): the
    # same request alone and while another stream of this twin is generating gives the same tokens and logprobs.
    probe = {
        "model": "ada",
        "messages": [{"role": "user", "content": "Tell me about rivers."}],
        "max_tokens": 12,
        "temperature": 0,
        "logprobs": True,
        "extra_body": {"ignore_eos": True},
    }
    alone = client.chat.completions.create(**probe)
    other = client.chat.completions.create(
        model="ada",
        messages=[{"role": "user", "content": "Write a long story about a lighthouse."}],
        max_tokens=400,
        temperature=0,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    next(c for c in other if c.choices and c.choices[0].delta.content)  # the other stream is generating
    beside = client.chat.completions.create(**probe)
    other.close()

    def tokens(reply):
        return [(t.token, t.logprob) for t in reply.choices[0].logprobs.content]

    assert tokens(beside) == tokens(alone)

    # An adapter file that has gone missing is one line naming it, not a traceback.
    (twin / "model-adapter.lora.gguf").unlink()
    from daemon.catalog import twin_specs
    from twin.errors import UserError

    with pytest.raises(
        UserError,
        match=r"LoRA adapter .*model-adapter\.lora\.gguf does not exist: convert it again with `twin convert --name ada`",
    ):
        twin_specs("ada")
