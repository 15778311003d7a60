"""The daemon's counters and gauges, rendered in Prometheus' text exposition format for GET /metrics."""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Prometheus text lines, one metric family at a time: HELP and TYPE, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], str]] = ()) -> None:
        """A family and its samples, each (labels, formatted value)."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.sample(name, labels, value)

    def sample(self, name: str, labels: dict[str, str], value: object) -> None:
        self.lines.append(f"{name}{_labels(**labels)} {value}")

    def by_model(self, name: str, kind: str, help_text: str, values: Mapping[str, object], fmt: str = "") -> None:
        """A family with one sample per model, in model order."""
        self.family(name, kind, help_text, (({"model": m}, format(v, fmt)) for m, v in sorted(values.items())))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


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
        out = Exposition()
        out.family(
            "twin_requests_total",
            "counter",
            "HTTP requests answered, by route and status.",
            (({"path": path, "status": status}, str(n)) for (path, status), n in sorted(self.requests.items())),
        )
        out.by_model("twin_prompt_tokens_total", "counter", "Prompt tokens processed.", self.prompt_tokens)
        out.by_model(
            "twin_completion_tokens_total",
            "counter",
            "Tokens generated, including those of abandoned requests.",
            self.completion_tokens,
        )
        out.by_model(
            "twin_generation_seconds_total",
            "counter",
            "Seconds spent generating (prompt processing included).",
            self.generation_seconds,
            ".6f",
        )
        out.by_model(
            "twin_generation_tokens_per_second",
            "gauge",
            "Generation speed of the last finished request.",
            self.last_tokens_per_second,
            ".3f",
        )
        for name, help_text, value in (
            ("twin_queue_depth", "Requests waiting for the model.", queue_depth),
            ("twin_requests_in_flight", "API requests being handled (waiting or generating).", self.in_flight),
            ("twin_requests_receiving", "API requests still sending their body.", self.receiving),
            ("twin_models_loaded", "GGUF files held in memory.", len(loaded)),
        ):
            out.family(name, "gauge", help_text, [({}, str(value))])
        return out.text()


QUEUE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SPEED_WINDOW = 10.0  # seconds of recent steps behind the tokens/s gauge


@dataclass
class EngineMetrics:
    """What the batching engine measures; its worker thread records, the /metrics handler renders."""

    prompt_evaluated: Counter[str] = field(default_factory=Counter)  # by model file
    prompt_reused: Counter[str] = field(default_factory=Counter)
    moves: Counter[str] = field(default_factory=Counter)  # sequences moved to keep the busy ones adjacent
    generated: Counter[str] = field(default_factory=Counter)
    busy_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    queue_counts: list[int] = field(default_factory=lambda: [0] * (len(QUEUE_BUCKETS) + 1))
    queue_sum: float = 0.0
    _recent: deque[tuple[float, str, int, float]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_prompt(self, model: str, evaluated: int = 0, reused: int = 0) -> None:
        self.prompt_evaluated[model] += evaluated
        self.prompt_reused[model] += reused

    def record_move(self, model: str) -> None:
        self.moves[model] += 1

    def record_step(self, model: str, generated: int, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.generated[model] += generated
            self.busy_seconds[model] += seconds
            self._recent.append((now, model, generated, seconds))
            while self._recent and self._recent[0][0] < now - SPEED_WINDOW:
                self._recent.popleft()

    def record_queue_wait(self, seconds: float) -> None:
        with self._lock:
            self.queue_counts[bisect.bisect_left(QUEUE_BUCKETS, seconds)] += 1
            self.queue_sum += seconds

    def tokens_per_second(self) -> dict[str, float]:
        """Per model: tokens generated per second of decoding over the last seconds, all its sequences together."""
        now = time.monotonic()
        tokens: Counter[str] = Counter()
        seconds: defaultdict[str, float] = defaultdict(float)
        with self._lock:
            for t, model, n, s in self._recent:
                if t >= now - SPEED_WINDOW:
                    tokens[model] += n
                    seconds[model] += s
        return {m: tokens[m] / seconds[m] for m in seconds if seconds[m] > 0}

    def render(self, slots: list[tuple[str, int, int]]) -> str:
        """`slots`: (model file, busy, total) for each loaded model."""
        out = Exposition()
        out.family(
            "twin_slots_busy",
            "gauge",
            "Sequences of a loaded model working on a request.",
            (({"model": model}, str(busy)) for model, busy, _ in slots),
        )
        out.family(
            "twin_slots_total",
            "gauge",
            "Sequences a loaded model decodes together (--parallel).",
            (({"model": model}, str(total)) for model, _, total in slots),
        )
        out.family(
            "twin_queue_wait_seconds", "histogram", "From a request's arrival until its first choice has a slot."
        )
        with self._lock:
            counts, total_seconds = list(self.queue_counts), self.queue_sum
        running = 0
        for bound, n in zip((*QUEUE_BUCKETS, float("inf")), counts, strict=True):
            running += n
            out.sample(
                "twin_queue_wait_seconds_bucket", {"le": "+Inf" if bound == float("inf") else f"{bound:g}"}, running
            )
        out.sample("twin_queue_wait_seconds_sum", {}, f"{total_seconds:.6f}")
        out.sample("twin_queue_wait_seconds_count", {}, running)
        out.by_model(
            "twin_prompt_tokens_evaluated_total",
            "counter",
            "Prompt tokens run through the model.",
            self.prompt_evaluated,
        )
        out.by_model(
            "twin_prompt_tokens_reused_total",
            "counter",
            "Prompt tokens found in a slot's cache, not evaluated.",
            self.prompt_reused,
        )
        out.by_model(
            "twin_sequence_moves_total",
            "counter",
            "KV caches copied to another sequence so that the busy sequences stay adjacent (one decode pass).",
            self.moves,
        )
        out.by_model(
            "twin_model_generated_tokens_total",
            "counter",
            "Tokens a model generated, all requests together.",
            self.generated,
        )
        out.by_model(
            "twin_model_tokens_per_second",
            "gauge",
            f"Tokens generated per second of decoding, last {SPEED_WINDOW:g} s.",
            self.tokens_per_second(),
            ".3f",
        )
        return out.text()
