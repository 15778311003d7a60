"""Benchmark `twin convert` on the embedded SmolLM2-135M-Instruct with the bundled sample's validation replies.

A temporary TWIN_HOME gets the embedded model as an HF checkpoint (trainer.bases,
as the trainer would leave merged/) and the sample export ingested into a dataset.
`twin convert --name bench` (auto: f16, verify, the three 4-bit candidates, each
measured) runs in a child process so its time and peak memory are its own; a
second child only writes the f16 GGUF, to show what streaming tensors costs.
Then every quant type is measured on the same replies. Prints one `name=value` a line:

    convert_seconds        wall time of `twin convert --name bench` (auto), child process
    convert_peak_rss_mb    its peak resident memory (MiB): writing, verification against transformers, quantizing, measuring
    write_f16_seconds      wall time of writing the f16 GGUF alone (child process)
    write_f16_peak_rss_mb  its peak resident memory (MiB), interpreter and torch included
    model_f32_mb           the checkpoint's size in fp32, for scale
    ppl_<quant>            perplexity of the validation replies (reply tokens only) through llama.cpp, per GGUF type
    chosen_quant_is_q4_1   1 when auto picked q4_1 (the 4-bit type DESIGN.md expects), else 0
    quant_ppl_ratio        perplexity of the 4-bit type auto chose / f16's (goal ≤ 1.03)

A bar chart of the perplexities is written to --plot (default: a temporary PNG, its path on stderr).

Usage: python bench/convert.py [--plot FILE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file is bench/convert.py: with bench/ first on sys.path, `import convert` would find it instead of the package.
sys.path[0] = str(ROOT)
SAMPLE = ROOT / "examples" / "telegram_sample" / "result.json"
QUANTS = ("q4_1", "q4_0", "q4_k_m", "q5_k_m", "q8_0")

# The child reports its own high-water mark: ru_maxrss from wait4 would include the RSS this (large) parent had
# when it forked the child, which Linux carries over into the child's accounting.
PEAK_ON_EXIT = """
import atexit, sys

def _peak():
    with open("/proc/self/status") as f:
        kb = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    print(f"PEAK_RSS_KB={kb}", file=sys.stderr, flush=True)

atexit.register(_peak)
"""
TWIN_CLI = PEAK_ON_EXIT + "from twin.cli import main\nmain(sys.argv[1:])\n"
WRITE_ONLY = (
    PEAK_ON_EXIT
    + """
from pathlib import Path
from convert.architectures import architecture_for
from convert.checkpoint import open_checkpoint
from convert.hf_to_gguf import embedding_rows, write_gguf
from convert.vocab import load_hf_tokenizer, read_vocabulary
src, out = Path(sys.argv[1]), Path(sys.argv[2])
ckpt = open_checkpoint(src)
arch = architecture_for(ckpt.architecture)
vocab = read_vocabulary(src, load_hf_tokenizer(src), embedding_rows(ckpt, arch))
write_gguf(ckpt, arch, vocab, out, "f16", "bench")
"""
)


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a child to completion; (wall seconds, its peak RSS in MiB as it reports it). Fails loudly on a non-zero exit."""
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        code = subprocess.run(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True).returncode
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    if code != 0:
        sys.exit(f"bench/convert.py: {' '.join(args[:4])} failed ({code}):\n{output}")
    peak = [line for line in output.splitlines() if line.startswith("PEAK_RSS_KB=")]
    print("\n".join(line for line in output.splitlines() if not line.startswith("PEAK_RSS_KB=")), file=sys.stderr)
    return seconds, int(peak[-1].split("=")[1]) / 1024


def plot(ppl: dict[str, float], chosen: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(ppl)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    colors = ["tab:orange" if n == chosen else "tab:gray" if n == "f16" else "tab:blue" for n in names]
    ax.bar(names, [ppl[n] for n in names], color=colors)
    ax.axhline(ppl["f16"], color="black", linewidth=0.8, linestyle="--", label="f16")
    ax.set_ylabel("perplexity of my replies")
    ax.set_title(f"SmolLM2-135M on the sample's validation replies (auto chose {chosen})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="twin-bench-convert-") as tmp:
        home = Path(tmp) / "home"
        os.environ["TWIN_HOME"] = str(home)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "HF_HUB_OFFLINE": "1",
        }

        from convert.perplexity import load_conversations, reply_perplexity
        from convert.quantize import quantize
        from trainer.bases import embedded_hf_dir
        from trainer.ingest.run import IngestConfig, ingest
        from twin import registry

        print("bench: importing the embedded model and ingesting the sample …", file=sys.stderr)
        merged_src = embedded_hf_dir()
        dataset = ingest(IngestConfig(exports=[SAMPLE], name="bench"))
        (home / "twins" / "bench" / "merged").symlink_to(merged_src, target_is_directory=True)

        print("bench: twin convert --name bench (auto) …", file=sys.stderr)
        convert_seconds, convert_rss = run_child([sys.executable, "-c", TWIN_CLI, "convert", "--name", "bench"], env)
        chosen = registry.read("bench")["model"]["quant"]

        f16 = Path(tmp) / "model-f16.gguf"
        write_seconds, write_rss = run_child([sys.executable, "-c", WRITE_ONLY, str(merged_src), str(f16)], env)
        f32_mb = sum(p.stat().st_size for p in merged_src.glob("*.safetensors")) / 2**20

        conversations = load_conversations(dataset.val, limit=10_000)
        ppl = {"f16": reply_perplexity(f16, conversations).value}
        for quant in QUANTS:
            print(f"bench: {quant} …", file=sys.stderr)
            out = Path(tmp) / f"model-{quant}.gguf"
            quantize(f16, out, quant)
            ppl[quant] = reply_perplexity(out, conversations).value
            out.unlink()

        print(f"convert_seconds={convert_seconds:.1f}")
        print(f"convert_peak_rss_mb={convert_rss:.0f}")
        print(f"write_f16_seconds={write_seconds:.1f}")
        print(f"write_f16_peak_rss_mb={write_rss:.0f}")
        print(f"model_f32_mb={f32_mb:.0f}")
        for quant, value in ppl.items():
            print(f"ppl_{quant}={value:.3f}")
        print(f"chosen_quant_is_q4_1={int(chosen == 'q4_1')}")
        print(f"quant_ppl_ratio={ppl[chosen] / ppl['f16']:.4f}")
        print(f"bench: auto chose {chosen} on {len(conversations)} validation conversations", file=sys.stderr)

        target = args.plot or Path(tempfile.gettempdir()) / "twin-bench-convert.png"
        plot(ppl, chosen, target)
        print(f"bench: plot in {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
