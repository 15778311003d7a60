"""Settings: defaults < $XDG_CONFIG_HOME/twin/config.toml < TWIN_* environment variables < command-line flags.

Each concern has one dataclass whose fields are its settings, validated when
built; `load(ServeSettings, flags)` merges the four sources. In config.toml a
concern is a table (`[serve]`, `[chat]`); in the environment a field is
`TWIN_<FIELD>` (TWIN_PORT, TWIN_API_KEY, ...).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from twin.errors import UserError
from twin.files import read_toml
from twin.paths import config_file

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@dataclass
class ServeSettings:
    """`twin serve`: where it listens and how it treats requests."""

    model: str = "default"  # "default", a GGUF path, or a built twin's name
    backend: str = "llama.cpp"  # what serves --model: llama.cpp (its GGUF) or onnx (its ONNX export, `<name>-onnx`)
    host: str = "127.0.0.1"
    port: int = 8642
    api_key: str = ""  # Bearer key; required when host is not loopback
    queue_size: int = 16  # requests waiting for a model before 429
    max_loaded: int = 2  # models kept in memory at once; others load on demand
    n_ctx: int = 2048  # context window of each request (capped by the model's own)
    parallel: int = 4  # requests of one model decoded together, each in its own sequence (and KV cache)
    requantize: str = "auto"  # auto: with parallel > 1, serve q4_1/q5_1 files from a q8_0 copy (daemon.weights); off
    idle_unload: str = "0"  # free a model unused this long ("90s", "10m", "1h"); 0 = never
    threads: int = 0  # llama.cpp threads; 0 = all cores
    max_body_bytes: int = 1_048_576
    max_upload_mb: int = 2048  # POST /v1/files (streamed to disk; the JSON body cap above stays small)
    train_threads: int = 0  # torch threads of a fine-tuning job's build (at nice 10); 0 = every core
    grace_seconds: float = 30.0  # on SIGTERM, how long in-flight requests may finish
    cors_origins: list[str] = field(default_factory=list)
    log_content: bool = False  # never log message text unless asked
    idle_timeout: float = 15.0  # seconds a connection may sit idle or take sending its headers
    body_timeout: float = 30.0  # seconds a request may take sending its body (408 beyond)
    max_connections: int = 256  # open connections at once; more are answered 503 and closed
    responses_max_mb: int = 100  # stored /v1/responses (responses.db): the oldest go beyond this size
    responses_max_age: str = "30d"  # and once they are this old (as OpenAI keeps them 30 days)

    def __post_init__(self) -> None:
        _check(0 <= self.port < 65536, "port", "must be between 0 (any free port) and 65535")
        _check(self.backend in ("llama.cpp", "onnx"), "backend", "must be llama.cpp or onnx")
        _check(self.queue_size >= 1, "queue_size", "must be at least 1")
        _check(self.max_loaded >= 1, "max_loaded", "must be at least 1")
        _check(self.n_ctx >= 64, "n_ctx", "must be at least 64")
        _check(1 <= self.parallel <= 64, "parallel", "must be between 1 and 64")
        _check(self.requantize in ("auto", "off"), "requantize", "must be auto or off")
        _duration(self.idle_unload, "idle_unload")
        _check(self.threads >= 0, "threads", "must be 0 (all cores) or more")
        _check(self.max_body_bytes >= 1024, "max_body_bytes", "must be at least 1024")
        _check(self.max_upload_mb >= 1, "max_upload_mb", "must be at least 1")
        _check(self.train_threads >= 0, "train_threads", "must be 0 (automatic) or more")
        _check(self.grace_seconds >= 0, "grace_seconds", "must not be negative")
        _check(self.idle_timeout > 0, "idle_timeout", "must be more than 0")
        _check(self.body_timeout > 0, "body_timeout", "must be more than 0")
        _check(self.max_connections >= 1, "max_connections", "must be at least 1")
        _check(self.responses_max_mb >= 1, "responses_max_mb", "must be at least 1")
        _check(_duration(self.responses_max_age, "responses_max_age") > 0, "responses_max_age", "must be more than 0")
        if self.host not in LOOPBACK_HOSTS and not self.api_key:
            raise UserError(
                f"refusing to listen on non-loopback address {self.host!r} without an API key: "
                "set --api-key or TWIN_API_KEY, or bind 127.0.0.1"
            )

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def idle_unload_seconds(self) -> float:
        return _duration(self.idle_unload, "idle_unload")

    @property
    def responses_max_age_seconds(self) -> float:
        return _duration(self.responses_max_age, "responses_max_age")


@dataclass
class ChatSettings:
    """Clients of the daemon (`twin chat`, the demo): where the daemon is."""

    url: str = "http://127.0.0.1:8642/v1"
    api_key: str = ""
    max_tokens: int = 512  # longest reply `twin chat` asks for
    temperature: float = 0.8  # sampling temperature of chat replies (greedy decoding loops on small models)
    retry_seconds: float = 3.0  # how often `twin chat` retries an unreachable daemon

    def __post_init__(self) -> None:
        _check(self.url.startswith(("http://", "https://")), "url", "must start with http:// or https://")
        _check(self.max_tokens >= 1, "max_tokens", "must be at least 1")
        _check(0.0 <= self.temperature <= 2.0, "temperature", "must be between 0 and 2")
        _check(self.retry_seconds > 0, "retry_seconds", "must be more than 0")


TELEGRAM_API_URL = "https://api.telegram.org/bot"


@dataclass
class BotSettings:
    """`twin bot`: the Telegram bot's token file, Bot API server, who may use it, and how it answers.

    The token itself is never a setting (it would end up in config dumps): it lives
    in `token_file` (0600), or comes from TWIN_BOT_TOKEN.
    """

    token_file: str = ""  # default: bot-token beside config.toml
    api_url: str = TELEGRAM_API_URL  # a self-hosted telegram-bot-api (no 20 MB download limit), or the tests' fake
    owner: int = 0  # Telegram user id of the owner, for unattended setups (0: claimed with /start CODE)
    allow: list[str] = field(default_factory=list)  # user ids with the `chat` role, besides those added with /allow
    raters: list[str] = field(default_factory=list)  # user ids with the `rate` role (the survey)
    default_model: str = (
        ""  # the model a chat talks to until /model picks another ("": the first twin the daemon serves)
    )
    base: str = "default"  # the base model /train fine-tunes (a `--base` short name, hub id or path)
    context_turns: int = 8  # turns of a conversation sent with each new message (/reset forgets them)
    max_tokens: int = 256  # longest reply
    temperature: float = 0.8
    max_download_mb: int = 20  # Telegram's limit for bots' downloads; raise it with a self-hosted Bot API server
    edit_interval: float = 1.0  # seconds between two edits of a streamed or status message (Telegram's limits)

    def __post_init__(self) -> None:
        _check(self.api_url.startswith(("http://", "https://")), "bot.api_url", "must start with http:// or https://")
        _check(self.owner >= 0, "bot.owner", "must be a Telegram user id")
        for name in ("allow", "raters"):
            ids = getattr(self, name)
            _check(all(str(i).lstrip("-").isdigit() for i in ids), f"bot.{name}", "must list Telegram user ids")
        _check(self.context_turns >= 0, "bot.context_turns", "must not be negative")
        _check(self.max_tokens >= 1, "bot.max_tokens", "must be at least 1")
        _check(0.0 <= self.temperature <= 2.0, "bot.temperature", "must be between 0 and 2")
        _check(self.max_download_mb >= 1, "bot.max_download_mb", "must be at least 1")
        _check(self.edit_interval >= 1.0, "bot.edit_interval", "must be at least 1 (Telegram limits edits)")

    @property
    def file_url(self) -> str:
        """Where files are downloaded from: Telegram's `…/file/bot<token>/<path>` beside `…/bot<token>/`."""
        root, _, _ = self.api_url.rstrip("/").rpartition("/bot")
        return f"{root}/file/bot" if root else self.api_url.rstrip("/") + "/file/bot"


_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(text: str, name: str) -> float:
    """Seconds in "90", "90s", "10m", "1.5h" or "30d"."""
    value = str(text).strip().lower()
    unit = value[-1:] if value[-1:] in _UNITS and value[-1:] else ""
    try:
        seconds = float(value[: len(value) - len(unit)]) * _UNITS[unit]
    except ValueError:
        seconds = -1.0
    _check(seconds >= 0, name, f"must be a duration such as 90s, 10m or 1h (0 = never), got {text!r}")
    return seconds


def _check(ok: bool, name: str, why: str) -> None:
    if not ok:
        raise UserError(f"setting {name} {why}")


_SECTIONS: dict[type, str] = {ServeSettings: "serve", ChatSettings: "chat", BotSettings: "bot"}
T = TypeVar("T")


def read_config_file() -> dict[str, Any]:
    return read_toml(config_file(), "fix or delete the file")


def _convert(value: Any, tp: Any, name: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if tp is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if tp is float:
            return float(value)
        if origin is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
        return str(value)
    except (TypeError, ValueError):
        kind = getattr(tp, "__name__", str(tp))
        raise UserError(f"{source}: {name} must be {kind}, got {value!r}") from None


def load(cls: type[T], flags: dict[str, Any] | None = None) -> T:
    """Build `cls` from defaults, config file, TWIN_* environment and the non-None `flags`."""
    section = _SECTIONS[cls]
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # every settings class is a dataclass
    values: dict[str, Any] = {}

    table = read_config_file().get(section, {})
    if not isinstance(table, dict):
        raise UserError(f"{config_file()}: [{section}] must be a table")
    for key, value in table.items():
        if key not in names:
            raise UserError(f"{config_file()}: unknown setting {section}.{key} (known: {', '.join(sorted(names))})")
        values[key] = _convert(value, hints[key], f"{section}.{key}", str(config_file()))

    for name in names:
        env = f"TWIN_{name.upper()}"
        if env in os.environ:
            values[name] = _convert(os.environ[env], hints[name], env, "environment")

    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = _convert(value, hints[name], f"--{name.replace('_', '-')}", "option")
    return cls(**values)
