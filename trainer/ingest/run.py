"""`twin ingest`: chat exports in, the twin's dataset out (train.jsonl, val.jsonl, stats.json).

The recipe reads top to bottom: find and detect every input, read each one
into samples (cleaned, capped, de-duplicated) in a scratch file, split by
session, write the three files into a temporary directory that replaces the
twin's `dataset/` only when everything succeeded, then record it in twin.toml.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trainer.ingest import formats
from trainer.ingest.clean import KINDS, Cleaner
from trainer.ingest.dataset import DatasetBuilder
from trainer.ingest.formats import whatsapp
from trainer.ingest.formats.jsonl import JsonlError, read_jsonl
from trainer.ingest.formats.jsonstream import JsonStream, JsonSyntaxError
from trainer.ingest.formats.plain import PlainExport
from trainer.ingest.formats.telegram import TelegramExport
from trainer.ingest.messages import Message, Sample, Tally
from trainer.ingest.progress import ReadProgress
from trainer.ingest.sessions import Conversation, SessionSettings
from trainer.ingest.split import SPLITS
from trainer.ingest.summary import dataset_stats, registry_table
from trainer.ingest.who import Senders
from twin import paths, registry
from twin.dataset import DATASET_DIR, STATS, TRAIN, VAL
from twin.errors import UserError
from twin.files import WRITE_ERRNOS, write_bytes, write_error, writing
from twin.lock import twin_lock

DEFAULT_NAME = "me"
MAX_CONTEXT = 64


@dataclass
class IngestConfig:
    """Everything `twin ingest` takes: each field is the option of the same name (`dedupe` is `--keep-duplicates` inverted)."""

    exports: list[Path]  # chat exports, any mix of formats
    me: tuple[str, ...] = ()  # my display names or Telegram ids (user123); optional for a whole-account export
    name: str = DEFAULT_NAME  # the twin (twins/<name>/dataset)
    gap: float = 3600.0  # seconds of silence that end a conversation
    merge: float = 300.0  # seconds between one sender's messages that still make one turn
    context: int = 8  # turns before each reply kept as its context
    max_context_chars: int = 2000  # a longer context turn keeps only its last this many characters
    max_reply_chars: int = 1000  # replies longer than this are dropped (0: no cap)
    keep: frozenset[str] = frozenset()  # kinds of personal data left as they are (url, email, phone, card, iban, ip)
    strip_emoji: bool = False  # emoji are style: kept unless asked
    dedupe: bool = True  # drop samples whose context and reply repeat exactly
    split: str = "random"  # random (by session, seeded) or time (latest sessions to validation)
    seed: int = 0
    val_fraction: float = 0.2
    include_channels: bool = False  # Telegram channels are skipped unless asked
    include_bots: bool = False  # Telegram bot chats are skipped unless asked
    progress: bool = True  # a progress bar on stderr for large inputs

    def __post_init__(self) -> None:
        self.exports = [Path(p) for p in self.exports]
        if not self.exports:
            raise UserError("exports: give at least one chat export file")
        self.me = tuple(m for m in (s.strip() for s in self.me) if m)
        paths.check_name(self.name)
        if not self.gap > 0:
            raise UserError(f"--gap must be longer than 0 seconds, not {self.gap}")
        if not self.merge >= 0:
            raise UserError(f"--merge must be 0 seconds or more, not {self.merge}")
        if not 1 <= self.context <= MAX_CONTEXT:
            raise UserError(f"--context must be between 1 and {MAX_CONTEXT} turns, not {self.context}")
        if self.max_context_chars < 1:
            raise UserError(f"--max-context-chars must be 1 or more, not {self.max_context_chars}")
        if self.max_reply_chars < 0:
            raise UserError(f"--max-reply-chars must be 0 (no cap) or more, not {self.max_reply_chars}")
        self.keep = frozenset(k.strip().lower() for k in self.keep)
        unknown = sorted(self.keep - set(KINDS))
        if unknown:
            raise UserError(f"--keep {unknown[0]!r} is not a kind of personal data: use one of {', '.join(KINDS)}")
        if self.split not in SPLITS:
            raise UserError(f"--split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if not 0 <= self.val_fraction <= 0.5:
            raise UserError(f"--val-fraction must be between 0 and 0.5, not {self.val_fraction}")


@dataclass
class IngestResult:
    name: str
    dataset_dir: Path
    train: Path
    val: Path
    stats: dict = field(repr=False)

    @property
    def train_samples(self) -> int:
        return self.stats["samples"]["train"]

    @property
    def val_samples(self) -> int:
        return self.stats["samples"]["val"]


def parse_duration(text: str, option: str) -> float:
    """'90s', '5m', '1h', '1h30m' or a plain number of minutes, in seconds."""
    value = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value) * 60
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise UserError(f"{option} {text!r} is not a duration: write e.g. 90s, 5m, 1h or 1h30m")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def ingest(config: IngestConfig) -> IngestResult:
    """Read every export into twins/<name>/dataset/; nothing changes there unless all of it succeeds.

    The twin is locked while it runs; dataset/ and `[dataset]` are replaced as one unit.
    """
    files = [formats.resolve(p) for p in config.exports]
    kinds = [formats.detect(p) for p in files]
    registry.read(config.name)  # a broken twin.toml fails here, before the dataset is replaced
    folder = paths.twin_dir(config.name)
    created = [p for p in (folder.parent.parent, folder.parent, folder) if not p.exists()]
    try:
        with writing(folder, "writing the dataset"), twin_lock(config.name, "twin ingest"):
            return _ingest(config, files, kinds)
    except BaseException:
        for p in reversed(created):  # a failed first run leaves no empty twin behind
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


def _ingest(config: IngestConfig, files: list[Path], kinds: list[str]) -> IngestResult:
    cleaner = Cleaner(frozenset(KINDS) - config.keep, config.strip_emoji)
    settings = SessionSettings(
        gap=config.gap, merge=config.merge, context=config.context, context_chars=config.max_context_chars
    )
    tally = Tally()
    final = paths.twin_dir(config.name) / DATASET_DIR
    total = sum(p.stat().st_size for p in files)
    with registry.replacing(config.name) as unit:
        tmp = paths.private_dir(unit.dir / DATASET_DIR)
        builder = DatasetBuilder(tmp, settings, cleaner, config.max_reply_chars, config.dedupe)
        try:
            inputs = []
            with ReadProgress(total, config.progress) as progress:
                for path, kind in zip(files, kinds, strict=True):
                    progress.describe(path.name)
                    inputs.append(_read(path, kind, config, builder, cleaner, tally, progress))
            if builder.samples == 0:
                raise UserError(_no_samples(files, builder, tally))
            split = builder.write_split(config.val_fraction, config.split, config.seed)
        finally:
            builder.abort()
        stats = dataset_stats(config, inputs, tally, builder, cleaner, split)
        write_bytes(tmp / STATS, json.dumps(stats, ensure_ascii=False, indent=2).encode("utf-8", "replace") + b"\n")
        unit.set("dataset", registry_table(config, inputs, split))
    return IngestResult(config.name, final, final / TRAIN, final / VAL, stats)


def _read(
    path: Path,
    kind: str,
    config: IngestConfig,
    builder: DatasetBuilder,
    cleaner: Cleaner,
    tally: Tally,
    progress: ReadProgress,
) -> dict:
    """One input into the builder; returns what stats.json says about it."""
    read_before = tally.read
    senders = Senders(path, config.me)
    try:
        if kind.startswith("telegram"):
            with open(path, "rb") as f:
                export = TelegramExport(
                    JsonStream(f, progress.advance), tally, cleaner.entity, config.include_channels, config.include_bots
                )
                try:
                    _feed(export.messages(), senders, builder, tally, lambda: senders.set_owner(export.owner_id))
                except JsonSyntaxError as e:
                    raise formats.syntax_error(path, e, export.position) from None
            if not senders.counts:
                raise UserError(_nothing_read(path, tally, read_before, formats.TELEGRAM_FIX))
            senders.check(needs_me=True)
            mine = senders.mine
        elif kind == "whatsapp":
            with formats.text_lines(path) as f:
                layout = whatsapp.survey(f)
            with formats.text_lines(path) as f:
                lines = _tracked(f, progress, path)
                try:
                    _feed(
                        whatsapp.read_whatsapp(lines, layout, whatsapp.chat_name(path), tally), senders, builder, tally
                    )
                except whatsapp.WhatsAppError as e:
                    raise UserError(
                        f"{formats.where(path, f'line {e.line}')}: {e.problem}: fix that line or export the chat again"
                    ) from None
            if not senders.counts:
                raise UserError(_nothing_read(path, tally, read_before, "export the chat again from WhatsApp"))
            senders.check(needs_me=True)
            mine = senders.mine
        elif kind == "plain":
            with open(path, "rb") as f:
                plain = PlainExport(JsonStream(f, progress.advance), tally)
                try:
                    for sample in plain.samples():
                        _add_sample(sample, builder, cleaner, tally, path.name)
                except JsonSyntaxError as e:
                    raise formats.syntax_error(path, e, plain.position) from None
            mine = plain.replies
            if not mine:
                raise UserError(
                    f'{path}: no replies of mine: every "bot" is empty or missing: fill in "bot" (that is you)'
                )
        else:
            with formats.text_lines(path) as f:
                try:
                    for sample in read_jsonl(_tracked(f, progress, path), tally):
                        _add_sample(sample, builder, cleaner, tally, path.name)
                except JsonlError as e:
                    raise UserError(
                        f"{formats.where(path, f'line {e.line}')}: {e.problem}: fix or remove that line"
                    ) from None
            mine = tally.read - read_before
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason}): export it again or save it as UTF-8") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise UserError(f"{path}: a broken zip ({e}): unzip it and pass the chat's .txt file") from None
    except OSError as e:
        if e.errno in WRITE_ERRNOS and e.errno != errno.EACCES and e.errno != errno.EPERM:
            # the dataset's scratch file, written while reading: the disk is the problem, not the export
            raise write_error(e, paths.twin_dir(config.name), "writing the dataset") from None
        raise UserError(f"{path}: cannot read it ({e.strerror or e}): check the file and its permissions") from None
    shown = str(path).encode("utf-8", "replace").decode("utf-8")
    me = sorted(senders.ids | senders.names) if kind in ("telegram-account", "telegram-chat", "whatsapp") else []
    return {"path": shown, "format": kind, "messages": tally.read - read_before, "mine": mine, "me": me}


def _feed(
    messages: Iterator[Message],
    senders: Senders,
    builder: DatasetBuilder,
    tally: Tally,
    on_chat=None,
) -> None:
    """Messages of one file, chat after chat, into conversations."""
    skipped = tally.skipped
    is_me = senders.is_me
    conv: Conversation | None = None
    chat = None
    for msg in messages:
        if msg.chat is not chat:
            if conv is not None:
                builder.finish_conversation(conv)
            if on_chat is not None:
                on_chat()
            chat = msg.chat
            conv = builder.conversation(chat)
        mine = is_me(msg.sender_id, msg.sender)
        if mine and msg.forwarded:
            skipped["forwarded by me"] += 1
            continue
        conv.add(msg, mine)  # type: ignore[union-attr]  # set with the first message's chat
    if conv is not None:
        builder.finish_conversation(conv)


def _add_sample(sample: Sample, builder: DatasetBuilder, cleaner: Cleaner, tally: Tally, source: str) -> None:
    cleaned = [(role, cleaner(content).strip()) for role, content in sample.messages]
    if not cleaned[-1][1]:
        builder.dropped["empty after cleaning"] += 1
        return
    context = [(r, c) for r, c in cleaned[:-1] if c]
    builder.add_sample(Sample([*context, cleaned[-1]], sample.where), source)


def _tracked(f, progress: ReadProgress, path: Path) -> Iterator[str]:
    """The lines of a text file, advancing the progress bar by about the bytes they took."""
    size = path.stat().st_size
    done = 0
    for i, line in enumerate(f):
        if i % 4096 == 0:
            pos = min(f.buffer.tell(), size)  # inside a zip: uncompressed bytes, capped at the file
            progress.advance(pos - done)
            done = pos
        yield line
    progress.advance(size - done)


def _nothing_read(path: Path, tally: Tally, read_before: int, fix: str) -> str:
    """Why a file gave no message at all, instead of an empty list of senders."""
    seen = tally.read - read_before
    found = []
    if seen:
        found.append(
            f"{seen} messages, none usable: " + ", ".join(f"{n} {why}" for why, n in tally.skipped.most_common(4))
        )
        if tally.skipped.get("malformed"):
            found.append("a message needs a date (date_unixtime or date), a sender and a text")
    found.extend(f"{why} ({n})" for why, n in tally.chats_skipped.most_common(4))
    return f"{path}: no message could be read ({'; '.join(found) or 'no messages in it'}): {fix}"


def _no_samples(files: list[Path], builder: DatasetBuilder, tally: Tally) -> str:
    dropped = ", ".join(f"{n} {why}" for why, n in builder.dropped.most_common()) or "none dropped"
    names = ", ".join(str(p) for p in files)
    return (
        f"{names}: no samples left ({builder.my_turns} turns of mine; {dropped}): "
        "a sample needs someone else's message before yours in the same conversation; "
        "try a longer --gap, a larger --max-reply-chars, or more exports"
    )
