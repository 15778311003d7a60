"""The daemon's counters and gauges, rendered in Prometheus' text exposition format for GET /metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass
class Metrics:
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (route, status): a bounded set
    prompt_tokens: Counter[str] = field(default_factory=Counter)  # by model
    completion_tokens: Counter[str] = field(default_factory=Counter)
    generation_seconds: Counter[str] = field(default_factory=Counter)
    last_tokens_per_second: dict[str, float] = field(default_factory=dict)
    in_flight: int = 0
    receiving: int = 0  # requests whose body is still arriving

    def record_request(self, route: str, status: int) -> None:
        """`route` is the matched route's pattern (`/v1/models/{id}`) or "unmatched", never a raw path."""
        self.requests[(route, str(status))] += 1

    def record_generation(self, model: str, prompt_tokens: int, completion_tokens: int, seconds: float) -> None:
        self.prompt_tokens[model] += prompt_tokens
        self.completion_tokens[model] += completion_tokens
        self.generation_seconds[model] += seconds  # type: ignore[assignment]  # Counter adds floats as well as ints
        if completion_tokens and seconds > 0:
            self.last_tokens_per_second[model] = completion_tokens / seconds

    def render(self, queue_depth: int, loaded: list[str]) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        family("twin_requests_total", "counter", "HTTP requests answered, by route and status.")
        for (path, status), n in sorted(self.requests.items()):
            lines.append(f"twin_requests_total{_labels(path=path, status=status)} {n}")
        family("twin_prompt_tokens_total", "counter", "Prompt tokens processed.")
        for model, n in sorted(self.prompt_tokens.items()):
            lines.append(f"twin_prompt_tokens_total{_labels(model=model)} {n}")
        family("twin_completion_tokens_total", "counter", "Tokens generated, including those of abandoned requests.")
        for model, n in sorted(self.completion_tokens.items()):
            lines.append(f"twin_completion_tokens_total{_labels(model=model)} {n}")
        family("twin_generation_seconds_total", "counter", "Seconds spent generating (prompt processing included).")
        for model, s in sorted(self.generation_seconds.items()):
            lines.append(f"twin_generation_seconds_total{_labels(model=model)} {s:.6f}")
        family("twin_generation_tokens_per_second", "gauge", "Generation speed of the last finished request.")
        for model, v in sorted(self.last_tokens_per_second.items()):
            lines.append(f"twin_generation_tokens_per_second{_labels(model=model)} {v:.3f}")
        family("twin_queue_depth", "gauge", "Requests waiting for the model.")
        lines.append(f"twin_queue_depth {queue_depth}")
        family("twin_requests_in_flight", "gauge", "API requests being handled (waiting or generating).")
        lines.append(f"twin_requests_in_flight {self.in_flight}")
        family("twin_requests_receiving", "gauge", "API requests still sending their body.")
        lines.append(f"twin_requests_receiving {self.receiving}")
        family("twin_models_loaded", "gauge", "GGUF files held in memory.")
        lines.append(f"twin_models_loaded {len(loaded)}")
        return "\n".join(lines) + "\n"
