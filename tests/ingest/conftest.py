"""Builders for the exports the ingest tests write, and a way to read back what ingest made."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from trainer.ingest.run import IngestConfig, IngestResult, ingest

T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC: message times are T0 + seconds


class TG:
    """Telegram Desktop export pieces, shaped exactly as Telegram writes them."""

    @staticmethod
    def msg(mid: int, t: int, who: str, text: object = "", **extra: object) -> dict:
        uid = {"Me": "user1", "Anna": "user2", "Bob": "user3", "Cat": "user4"}.get(who, f"user{abs(hash(who)) % 10**6}")
        m = {
            "id": mid,
            "type": "message",
            "date": _iso(T0 + t),
            "date_unixtime": str(T0 + t),
            "from": who,
            "from_id": uid,
        }
        m.update(extra)
        m["text"] = text
        if isinstance(text, str):
            m["text_entities"] = [{"type": "plain", "text": text}] if text else []
        else:
            m["text_entities"] = [p if isinstance(p, dict) else {"type": "plain", "text": p} for p in text]
        return m

    @staticmethod
    def service(mid: int, t: int, actor: str = "Anna", action: str = "phone_call") -> dict:
        return {
            "id": mid,
            "type": "service",
            "date": _iso(T0 + t),
            "date_unixtime": str(T0 + t),
            "actor": actor,
            "actor_id": "user2",
            "action": action,
            "text": "",
            "text_entities": [],
        }

    @staticmethod
    def chat(messages: list[dict], name: str = "Anna", kind: str = "personal_chat", cid: int = 2) -> dict:
        return {"name": name, "type": kind, "id": cid, "messages": messages}

    @staticmethod
    def account(chats: list[dict], left: list[dict] | None = None, owner: int | None = 1) -> dict:
        data: dict = {"about": "Here is the data you requested."}
        if owner is not None:
            data["personal_information"] = {
                "user_id": owner,
                "first_name": "Me",
                "last_name": "",
                "phone_number": "+1 555",
                "bio": "",
            }
        data["contacts"] = {
            "about": "contacts",
            "list": [{"first_name": "Anna", "last_name": "", "phone_number": "+1"}],
        }
        data["chats"] = {"about": "This page lists all chats from this export.", "list": chats}
        if left is not None:
            data["left_chats"] = {"about": "left", "list": left}
        return data


def _iso(ts: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture
def tg() -> type[TG]:
    return TG


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, object], Path]:
    """write(name, data): a str is written as is, anything else as Telegram-style indented JSON."""

    def _write(name: str, data: object) -> Path:
        path = tmp_path / name
        if isinstance(data, (str, bytes)):
            path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        else:
            path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    return _write


def samples(path: Path) -> list[list[str]]:
    """A dataset file as ["user: …", "assistant: …"] lists, for exact comparisons."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        out.append([f"{m['role']}: {m['content']}" for m in json.loads(line)["messages"]])
    return out


def all_samples(result: IngestResult) -> list[list[str]]:
    return samples(result.train) + samples(result.val)


@pytest.fixture
def run() -> Callable[..., IngestResult]:
    """run(paths, **config) → IngestResult, everything in the training file (val_fraction=0) unless asked."""

    def _run(paths: list[Path] | Path, **kw: object) -> IngestResult:
        kw.setdefault("val_fraction", 0.0)
        kw.setdefault("progress", False)
        exports = paths if isinstance(paths, list) else [paths]
        return ingest(IngestConfig(exports=exports, **kw))

    return _run


@pytest.fixture
def samples_of() -> Callable[[Path], list[list[str]]]:
    return samples


@pytest.fixture
def all_of() -> Callable[[IngestResult], list[list[str]]]:
    return all_samples
