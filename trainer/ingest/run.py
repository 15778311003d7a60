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
from dataclasses import dataclass, field
from pathlib import Path

from trainer.ingest import formats
from trainer.ingest.clean import KINDS, Cleaner
from trainer.ingest.dataset import DatasetBuilder
from trainer.ingest.messages import Tally
from trainer.ingest.progress import ReadProgress
from trainer.ingest.reading import Reading
from trainer.ingest.sessions import SessionSettings
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
    """One input into the builder, by the format that detected it; returns what stats.json says about it."""
    fmt = formats.of_kind(kind)
    reading = Reading(path, config, builder, cleaner, tally, progress, Senders(path, config.me))
    try:
        mine = fmt.read(path, kind, reading)
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
    senders = reading.senders
    me = sorted(senders.ids | senders.names) if fmt.by_sender else []
    return {"path": shown, "format": kind, "messages": reading.read, "mine": mine, "me": me}


def _no_samples(files: list[Path], builder: DatasetBuilder, tally: Tally) -> str:
    dropped = ", ".join(f"{n} {why}" for why, n in builder.dropped.most_common()) or "none dropped"
    names = ", ".join(str(p) for p in files)
    return (
        f"{names}: no samples left ({builder.my_turns} turns of mine; {dropped}): "
        "a sample needs someone else's message before yours in the same conversation; "
        "try a longer --gap, a larger --max-reply-chars, or more exports"
    )
