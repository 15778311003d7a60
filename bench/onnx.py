"""Benchmark the ONNX backend against llama.cpp on the embedded twin: speed, first token, memory, perplexity.

A temporary TWIN_HOME gets the embedded SmolLM2-135M-Instruct as an HF checkpoint
(as the trainer leaves merged/) and the bundled sample ingested into a dataset.
Built from it: the f16 GGUF, the 4-bit GGUF `twin convert --quant auto` chooses,
and the int8 and int4 ONNX exports (onnxruntime-genai's builder, the options
`twin convert --format onnx` uses). Each model then runs in a child process of its
own, through the daemon's own runner (daemon.engine.open_runner: what serves a
request, minus HTTP), generating 128 greedy tokens for the capital question after
a warm-up. Perplexity: the same validation replies, the same rules
(convert.perplexity.measure) for every model. Prints one `name=value` a line:

    size_mb_<model>        the model's files on disk (MiB)
    ppl_<model>            perplexity of the validation replies (reply tokens only)
    tps_<model>            decode tokens/s (after the first token), one stream
    ttft_ms_<model>        time to first token (prompt evaluation + first sample), warm model
    load_s_<model>         loading the model in the child
    peak_rss_mb_<model>    the child's peak resident memory (interpreter and runtime included)
    gguf_q4_is_q4_1        1 when auto chose q4_1 (what DESIGN.md measured), else 0
    onnx_vs_gguf_tps       tps of ONNX int4 / the chosen 4-bit GGUF's (> 1: ONNX decodes faster)
    onnx_vs_gguf_ppl       perplexity of ONNX int4 / the chosen 4-bit GGUF's (< 1: ONNX keeps the style better)
    onnx_int8_vs_gguf_tps, onnx_int8_vs_gguf_ppl   the same for ONNX int8

<model>: gguf_f16, gguf_q4 (auto's choice), onnx_int8, onnx_int4.
Usage: python bench/onnx.py [--tokens N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file is bench/onnx.py: with bench/ first on sys.path, `import onnx` would find it instead of the package.
sys.path[0] = str(ROOT)
SAMPLE = ROOT / "examples" / "telegram_sample" / "result.json"

CHILD = """
import json, sys, time
from pathlib import Path

from daemon.batch import ChoiceDone, Delta, Job, Ticket
from daemon.engine import open_runner
from daemon.metrics import EngineMetrics
from daemon.schema import SamplingParams
from twin.threads import physical_cores

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
path, tokens = Path(sys.argv[1]), int(sys.argv[2])
started = time.perf_counter()
runner = open_runner(path, 1024, physical_cores(), 1, EngineMetrics())
load = time.perf_counter() - started


def generate(prompt, max_tokens):
    events = []
    ticket = Ticket(lambda e: events.append((time.perf_counter(), e)), len(prompt), 1)
    params = SamplingParams(max_tokens=max_tokens, temperature=0, ignore_eos=True)
    begin = time.perf_counter()
    runner.waiting.append(Job(ticket, 0, prompt, params, None))
    while runner.busy():
        runner.step()
    first = next(t for t, e in events if isinstance(e, Delta))
    end, done = next((t, e) for t, e in events if isinstance(e, ChoiceDone))
    return first - begin, (done.completion_tokens - 1) / (end - first)


generate(runner.model.text_tokens("Once upon a time"), 16)  # warm-up, sharing no prefix with the question
ttft, tps = generate(runner.model.chat_tokens(QUESTION), tokens)
with open("/proc/self/status") as f:
    peak = int(next(line.split()[1] for line in f if line.startswith("VmHWM:"))) / 1024
print("RESULT=" + json.dumps({"load": load, "ttft": ttft, "tps": tps, "peak": peak}), flush=True)
"""


def speed(path: Path, tokens: int, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(tokens)], env=env, capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT=")]
    if done.returncode != 0 or not lines:
        sys.exit(f"bench/onnx.py: the speed run on {path} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT="))


def size_mb(path: Path) -> float:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return sum(p.stat().st_size for p in files) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=128, help="tokens generated in each speed run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="twin-bench-onnx-") as tmp:
        home = Path(tmp) / "home"
        os.environ["TWIN_HOME"] = str(home)
        os.environ["HF_HUB_OFFLINE"] = "1"
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

        from convert.onnx_export import build
        from convert.onnx_perplexity import onnx_reply_perplexity
        from convert.perplexity import load_conversations, reply_perplexity
        from convert.pipeline import ConvertConfig, convert
        from trainer.bases import embedded_hf_dir
        from trainer.ingest.run import IngestConfig, ingest

        print("bench: importing the embedded model and ingesting the sample …", file=sys.stderr)
        merged = embedded_hf_dir()
        dataset = ingest(IngestConfig(exports=[SAMPLE], name="bench"))
        (home / "twins" / "bench" / "merged").symlink_to(merged, target_is_directory=True)

        print("bench: GGUF f16 and twin convert --quant auto …", file=sys.stderr)
        f16 = Path(tmp) / "model-f16.gguf"
        convert(ConvertConfig(model_dir=merged, quant="f16", output=f16))
        chosen = convert(ConvertConfig(name="bench", quant="auto"))
        models = {"gguf_f16": f16, "gguf_q4": chosen.path}
        for quant in ("int8", "int4"):
            print(f"bench: ONNX {quant} …", file=sys.stderr)
            models[f"onnx_{quant}"] = Path(tmp) / f"onnx-{quant}"
            build(merged, models[f"onnx_{quant}"], quant)

        conversations = load_conversations(dataset.val, limit=10_000)
        figures: dict[str, dict[str, float]] = {}
        for key, path in models.items():
            print(f"bench: {key}: perplexity and speed …", file=sys.stderr)
            if key.startswith("onnx"):
                ppl = onnx_reply_perplexity(path, conversations).value
            else:
                ppl = reply_perplexity(path, conversations).value
            figures[key] = {"size": size_mb(path), "ppl": ppl, **speed(path, args.tokens, env)}

        for key, f in figures.items():
            print(f"size_mb_{key}={f['size']:.1f}")
            print(f"ppl_{key}={f['ppl']:.3f}")
            print(f"tps_{key}={f['tps']:.1f}")
            print(f"ttft_ms_{key}={f['ttft'] * 1000:.0f}")
            print(f"load_s_{key}={f['load']:.2f}")
            print(f"peak_rss_mb_{key}={f['peak']:.0f}")
        q4 = figures["gguf_q4"]
        print(f"gguf_q4_is_q4_1={int(chosen.quant == 'q4_1')}")
        print(f"onnx_vs_gguf_tps={figures['onnx_int4']['tps'] / q4['tps']:.3f}")
        print(f"onnx_vs_gguf_ppl={figures['onnx_int4']['ppl'] / q4['ppl']:.3f}")
        print(f"onnx_int8_vs_gguf_tps={figures['onnx_int8']['tps'] / q4['tps']:.3f}")
        print(f"onnx_int8_vs_gguf_ppl={figures['onnx_int8']['ppl'] / q4['ppl']:.3f}")
        print(f"bench: auto chose {chosen.quant}; {len(conversations)} validation conversations", file=sys.stderr)


if __name__ == "__main__":
    main()
