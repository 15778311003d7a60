"""`twin demo`: the README's first command. Starts the daemon on the embedded model and talks to it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from daemon.process import DaemonProcess
from twin import embedded

QUESTION = "What is the capital of France? Answer in one short sentence."


def run_demo(out=print) -> str:
    """Serve the embedded model, send one chat request through the OpenAI SDK, print the answer; returns it."""
    import openai

    with tempfile.TemporaryDirectory(prefix="twin-demo-") as tmp:
        out("starting the daemon on the embedded model (SmolLM2-135M-Instruct)…")
        with DaemonProcess(["--model", "default"], log_path=Path(tmp) / "serve.log") as daemon:
            client = openai.OpenAI(base_url=daemon.url, api_key="not-needed-on-loopback")
            reply = client.chat.completions.create(
                model=embedded.MODEL_ID,
                messages=[{"role": "user", "content": QUESTION}],
                max_tokens=48,
                temperature=0.0,
                seed=1,
            )
            answer = (reply.choices[0].message.content or "").strip()
            out(f"\nyou:  {QUESTION}\ntwin: {answer}\n")
            out(f"(served at {daemon.url}; {reply.usage.completion_tokens} tokens)")
    out("Run `twin serve` and point any OpenAI client at http://127.0.0.1:8642/v1")
    out(f"  model id: {embedded.MODEL_ID}; Python: openai.OpenAI(base_url='http://127.0.0.1:8642/v1', api_key='-')")
    return answer
