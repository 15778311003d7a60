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
    host: str = "127.0.0.1"
    port: int = 8642
    api_key: str = ""  # Bearer key; required when host is not loopback
    queue_size: int = 16  # requests waiting for a model before 429
    max_loaded: int = 2  # models kept in memory at once; others load on demand
    n_ctx: int = 2048  # context window per loaded model (capped by the model's own)
    threads: int = 0  # llama.cpp threads; 0 = all cores
    max_body_bytes: int = 1_048_576
    grace_seconds: float = 30.0  # on SIGTERM, how long in-flight requests may finish
    cors_origins: list[str] = field(default_factory=list)
    log_content: bool = False  # never log message text unless asked
    idle_timeout: float = 15.0  # seconds a connection may sit idle or take sending its headers
    body_timeout: float = 30.0  # seconds a request may take sending its body (408 beyond)
    max_connections: int = 256  # open connections at once; more are answered 503 and closed

    def __post_init__(self) -> None:
        _check(0 <= self.port < 65536, "port", "must be between 0 (any free port) and 65535")
        _check(self.queue_size >= 1, "queue_size", "must be at least 1")
        _check(self.max_loaded >= 1, "max_loaded", "must be at least 1")
        _check(self.n_ctx >= 64, "n_ctx", "must be at least 64")
        _check(self.threads >= 0, "threads", "must be 0 (all cores) or more")
        _check(self.max_body_bytes >= 1024, "max_body_bytes", "must be at least 1024")
        _check(self.grace_seconds >= 0, "grace_seconds", "must not be negative")
        _check(self.idle_timeout > 0, "idle_timeout", "must be more than 0")
        _check(self.body_timeout > 0, "body_timeout", "must be more than 0")
        _check(self.max_connections >= 1, "max_connections", "must be at least 1")
        if self.host not in LOOPBACK_HOSTS and not self.api_key:
            raise UserError(
                f"refusing to listen on non-loopback address {self.host!r} without an API key: "
                "set --api-key or TWIN_API_KEY, or bind 127.0.0.1"
            )

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS


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


def _check(ok: bool, name: str, why: str) -> None:
    if not ok:
        raise UserError(f"setting {name} {why}")


_SECTIONS: dict[type, str] = {ServeSettings: "serve", ChatSettings: "chat"}
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
    names = {f.name for f in dataclasses.fields(cls)}
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
