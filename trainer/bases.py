"""Base models for training: `--base` names resolved to a local Hugging Face checkpoint directory.

- `default` / `smollm2` (the embedded SmolLM2-135M-Instruct): its GGUF is dequantized
  once into an HF checkpoint under the cache dir; later calls return that copy.
- short names (`tinyllama`, `phi3-mini`, `qwen2.5-0.5b`, `qwen2.5-1.5b`, `gpt2`,
  `distilgpt2`) stand for hub ids;
- a hub id (`Qwen/Qwen2.5-0.5B-Instruct`) is taken from the HF cache, downloaded
  only when the user named it and the hub is not switched off (HF_HUB_OFFLINE=1);
- a local directory holding `config.json` is used as is.
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path

from twin import embedded, paths
from twin.errors import UserError
from twin.files import atomic_dir, remove_orphans

log = logging.getLogger("twin.trainer")

SHORT_NAMES: dict[str, str] = {
    "tinyllama": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "phi3-mini": "microsoft/Phi-3-mini-4k-instruct",
    "qwen2.5-0.5b": "Qwen/Qwen2.5-0.5B-Instruct",
    "qwen2.5-1.5b": "Qwen/Qwen2.5-1.5B-Instruct",
    "gpt2": "openai-community/gpt2",
    "distilgpt2": "distilbert/distilgpt2",
}
# The `--base` help of `twin train` and `twin build`.
BASE_HELP = f"default (embedded SmolLM2-135M), {', '.join(SHORT_NAMES)}, a hub id or a directory."

# What a causal LM checkpoint needs; never pickled weights when safetensors exist, never remote code.
_ALLOW = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.jinja"]
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Files whose presence says the cached embedded copy is complete (it is swapped in as a whole).
_EMBEDDED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def embedded_hf_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as an HF checkpoint (fp32 safetensors + tokenizer), built on first use.

    Dequantizing the GGUF takes about half a minute; the copy lives in
    cache_dir()/bases/smollm2-135m-instruct and later calls return it at once.
    """
    target = paths.cache_dir() / "bases" / embedded.MODEL_ID
    remove_orphans(target.parent)  # half-made copies of killed runs (540 MB each)
    if all((target / f).is_file() for f in _EMBEDDED_FILES):
        return target
    gguf = embedded.embedded_gguf()
    log.info("importing the embedded model into %s (once, about a minute)", target)
    paths.private_dir(target.parent)
    with atomic_dir(target) as tmp:
        _dequantize(gguf, tmp)
    return target


def _dequantize(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF-loaded model is marked quantized and refuses save_pretrained: rebuild it from a clean config.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    config._name_or_path = embedded.MODEL_ID
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # A tied lm_head may be absent from one side; anything else means the copy is wrong.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(f"embedded model import: missing {missing}, unexpected {unexpected}")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def hub_id(base: str) -> str | None:
    """The hub id a short name stands for, the name itself if it looks like a hub id, else None."""
    if base in SHORT_NAMES:
        return SHORT_NAMES[base]
    return base if _REPO_ID_RE.match(base) else None


def resolve_base(base: str) -> Path:
    """A local directory holding the HF checkpoint named by `--base`; UserError with the fix when there is none."""
    base = base.strip()
    if base in embedded.ALIASES:
        return embedded_hf_dir()
    if base in SHORT_NAMES:
        return _local_dir(_from_hub(SHORT_NAMES[base]))
    path = Path(base).expanduser()
    if path.exists() or base.startswith((".", "/", "~")):
        return _local_dir(path)
    repo = hub_id(base)
    if repo is None:
        raise UserError(
            f"unknown base model {base!r}: pass `default`, a short name ({', '.join(SHORT_NAMES)}), "
            "a hub id like Qwen/Qwen2.5-0.5B-Instruct, or a local model directory"
        )
    return _local_dir(_from_hub(repo))


def _local_dir(path: Path) -> Path:
    if not path.is_dir():
        raise UserError(
            f"base model {path} is not a directory: pass a folder with config.json and weights, or a hub id"
        )
    if not (path / "config.json").is_file():
        raise UserError(f"base model {path} has no config.json: pass the folder of a Hugging Face causal LM checkpoint")
    return path.resolve()


def _from_hub(repo: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    offline = constants.HF_HUB_OFFLINE
    try:
        folder = Path(snapshot_download(repo, allow_patterns=_ALLOW))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(repo, allow_patterns=[*_ALLOW, "*.bin"]))
    except LocalEntryNotFoundError:
        if offline:
            raise UserError(
                f"base model {repo} is not downloaded and HF_HUB_OFFLINE=1 forbids fetching it: "
                f"run `hf download {repo}` while online (or unset HF_HUB_OFFLINE), or pass a local directory"
            ) from None
        raise UserError(
            f"cannot download base model {repo}: no connection to the Hugging Face hub; retry online or pass a local directory"
        ) from None
    except GatedRepoError:
        raise UserError(
            f"base model {repo} is gated: accept its license on huggingface.co and run `hf auth login`"
        ) from None
    except RepositoryNotFoundError:
        raise UserError(
            f"base model {repo} does not exist on the Hugging Face hub: check the name (or pass a short name like qwen2.5-0.5b)"
        ) from None
    except HfHubHTTPError as e:
        raise UserError(
            f"cannot download base model {repo} ({e.__class__.__name__}): retry, or pass a local directory"
        ) from None
    return folder
