"""`twin pack` and `twin unpack`: one archive that moves a twin between machines (a laptop, Colab, a server).

The archive is a plain tar: `twin/<path>` for each file of the twin (twin.toml,
the GGUF, the persona, the adapter; the dataset only with `with_data`, since it
is the person's private messages), and `manifest.json` last with the SHA-256
and size of each, hashed while they are written. Unpacking checks every member
before it writes a byte (regular files under `twin/` only: no links, devices,
absolute paths or `..`; exactly the files the manifest lists, at their sizes),
extracts into a hidden folder beside the twins, compares each hash, and only
then renames the folder into place: that rename is the registration. A damaged
or tampered archive leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import tomli_w

from twin import __version__, paths, registry
from twin.dataset import DATASET_DIR
from twin.errors import UserError
from twin.files import atomic_path, read_toml, replace_dir, temp_dir, writing
from twin.lock import twin_lock

FORMAT = "twin-pack"
VERSION = 1
MANIFEST = "manifest.json"
ROOT = "twin"  # every file of the twin lives under this folder of the archive
MAX_MANIFEST_BYTES = 1 << 20
CHUNK = 1 << 20


@dataclass(frozen=True)
class PackResult:
    path: Path
    files: int
    bytes: int
    with_data: bool


@dataclass(frozen=True)
class UnpackResult:
    name: str
    folder: Path
    files: int
    replaced: bool


def default_output(name: str) -> Path:
    return Path.cwd() / f"{name}.twin.tar"


# --- pack ------------------------------------------------------------------------------------------


def _tree(folder: Path, prefix: str) -> list[tuple[str, Path]]:
    """Every file under `folder`, as (path in the twin, file), in a stable order."""
    return [(f"{prefix}/{p.relative_to(folder).as_posix()}", p) for p in sorted(folder.rglob("*")) if p.is_file()]


def _contents(name: str, data: dict[str, Any], with_data: bool) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    """The twin.toml to pack (its GGUF named by file name) and the files that go with it."""
    folder = paths.twin_dir(name)
    packed = {table: dict(values) if isinstance(values, dict) else values for table, values in data.items()}
    files: list[tuple[str, Path]] = []
    for key in ("gguf", "lora"):  # the served GGUF and the LoRA adapter GGUF applied to it (`--quant adapter`)
        gguf = data.get("model", {}).get(key)
        if not gguf:
            continue
        source = Path(gguf) if Path(gguf).is_absolute() else folder / gguf
        if not source.is_file():
            raise UserError(
                f"twin {name!r}: its model {source} is missing: rebuild it with `twin convert --name {name}`"
            )
        files.append((source.name, source))
        packed["model"][key] = source.name  # an outside GGUF travels inside the twin
    persona = data.get("persona", {}).get("file")
    if persona and (folder / persona).is_file():
        files.append((persona, folder / persona))
    if (folder / "adapter").is_dir():
        files += _tree(folder / "adapter", "adapter")
    if with_data and (folder / DATASET_DIR).is_dir():
        files += _tree(folder / DATASET_DIR, DATASET_DIR)
    elif not with_data:
        packed.pop("dataset", None)  # it names the exports the messages came from: private too
    return packed, files


class _Hashing:
    """A file read through a SHA-256 (and a progress callback), as tarfile copies it into the archive."""

    def __init__(self, f: IO[bytes], advance: Callable[[int], None]) -> None:
        self.f = f
        self.digest = hashlib.sha256()
        self.advance = advance

    def read(self, size: int = -1) -> bytes:
        chunk = self.f.read(size)
        self.digest.update(chunk)
        self.advance(len(chunk))
        return chunk


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(f"{ROOT}/{name}" if name != MANIFEST else MANIFEST)
    info.size = size
    info.mode = 0o600
    info.mtime = int(time.time())
    return info


def pack(name: str, output: Path | None = None, *, with_data: bool = False) -> PackResult:
    """Write twin `name` into one archive (default ./NAME.twin.tar), 0600, complete or not at all."""
    paths.check_name(name)
    if not registry.toml_path(name).is_file():
        raise UserError(
            f"no twin named {name!r} in {paths.twins_dir()}: build one with `twin build EXPORT --name {name}`"
        )
    out = (output or default_output(name)).expanduser().resolve()
    if out.is_dir():
        raise UserError(f"{out} is a folder: pass the archive's file name with -o, e.g. -o {out / f'{name}.twin.tar'}")
    with twin_lock(name, "twin pack"):
        registry.finish_pending(name)
        packed, files = _contents(name, registry.read(name), with_data)
        toml = tomli_w.dumps(packed).encode()
        total = sum(p.stat().st_size for _, p in files) + len(toml)
        listed: dict[str, dict[str, Any]] = {}
        with (
            writing(out.parent, "writing the archive"),
            atomic_path(out) as tmp,
            _progress(total) as advance,
            tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar,
        ):
            # twin.toml from memory, the rest streamed from disk; each hashed as it goes in.
            tar.addfile(_member("twin.toml", len(toml)), _BytesReader(toml))
            listed["twin.toml"] = {"sha256": hashlib.sha256(toml).hexdigest(), "bytes": len(toml)}
            for arc, source in files:
                with open(source, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    reader = _Hashing(f, advance)
                    tar.addfile(_member(arc, size), reader)  # a reader with read() is all it needs
                listed[arc] = {"sha256": reader.digest.hexdigest(), "bytes": size}
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "name": name,
                "twin_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "with_data": with_data,
                "files": listed,
            }
            raw = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
            tar.addfile(_member(MANIFEST, len(raw)), _BytesReader(raw))
    return PackResult(out, len(listed), total, with_data)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.pos + size
        chunk, self.pos = self.data[self.pos : end], min(end, len(self.data))
        return chunk


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """`advance(n)` for each n bytes packed; a bar on a terminal's stderr only."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("packing", total=total)

        def advance(n: int) -> None:
            bar.update(task, advance=n)

        yield advance


# --- unpack ----------------------------------------------------------------------------------------


def _refuse(archive: Path, why: str) -> UserError:
    why = " ".join(why.split())  # one line, whatever an exception's text held
    return UserError(f"{archive}: {why}; it was not written by `twin pack`, or was damaged on the way: copy it again")


def _relative(archive: Path, member: tarfile.TarInfo) -> str:
    """The member's path inside the twin, or a UserError for anything but a plain file under `twin/`."""
    if not member.isreg():
        kind = "a link" if member.issym() or member.islnk() else "not a regular file"
        raise _refuse(archive, f"member {member.name!r} is {kind}, refusing it")
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or "\\" in member.name or len(path.parts) < 2 or path.parts[0] != ROOT:
        raise _refuse(archive, f"member {member.name!r} would be written outside the twin's folder, refusing it")
    return "/".join(path.parts[1:])


def _read_manifest(archive: Path, tar: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, Any]:
    if not member.isreg() or member.size > MAX_MANIFEST_BYTES:
        raise _refuse(archive, "its manifest.json is not a small regular file")
    f = tar.extractfile(member)
    try:
        manifest = json.loads(f.read() if f is not None else b"")
    except (ValueError, UnicodeDecodeError) as e:
        raise _refuse(archive, f"its manifest.json is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _refuse(archive, "its manifest.json is not a twin pack manifest")
    if manifest.get("version") != VERSION:
        raise UserError(
            f"{archive}: written by a twin whose pack format is version {manifest.get('version')!r}; "
            f"this twin reads version {VERSION}: upgrade twin"
        )
    files = manifest.get("files")
    ok = isinstance(files, dict) and all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("bytes"), int)
        for v in files.values()
    )
    if not isinstance(files, dict) or not ok or "twin.toml" not in files or not isinstance(manifest.get("name"), str):
        raise _refuse(archive, "its manifest.json lacks the twin's name or its files' hashes")
    return manifest


def _members(archive: Path, tar: tarfile.TarFile) -> tuple[dict[str, Any], list[tuple[str, tarfile.TarInfo]]]:
    """The manifest and the twin's members, checked against each other before anything is extracted."""
    manifest_member = None
    members: list[tuple[str, tarfile.TarInfo]] = []
    for member in tar.getmembers():
        if member.name == MANIFEST and manifest_member is None:
            manifest_member = member
            continue
        if member.isdir() and member.name.rstrip("/") == ROOT:
            continue
        members.append((_relative(archive, member), member))
    if manifest_member is None:
        raise _refuse(archive, "it has no manifest.json")
    manifest = _read_manifest(archive, tar, manifest_member)
    names = [rel for rel, _ in members]
    listed = manifest["files"]
    if len(set(names)) != len(names) or set(names) != set(listed):
        extra = sorted(set(names) - set(listed)) or sorted(set(listed) - set(names)) or names
        raise _refuse(archive, f"its files do not match its manifest (first: {extra[0]!r})")
    for rel, member in members:
        if member.size != listed[rel]["bytes"]:
            raise _refuse(archive, f"{rel} is {member.size} bytes, its manifest says {listed[rel]['bytes']}")
    return manifest, members


def _extract(archive: Path, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, expected: str) -> None:
    """Copy one member to `target` (0600, parents 0700), hashing it; a hash that differs is a refusal."""
    paths.private_dir(target.parent)
    source = tar.extractfile(member)
    if source is None:
        raise _refuse(archive, f"member {member.name!r} cannot be read")
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != expected:
        rel = member.name.removeprefix(f"{ROOT}/")
        raise _refuse(archive, f"{rel} does not match its SHA-256 in the manifest")


def _open(archive: Path) -> tarfile.TarFile:
    if not archive.is_file():
        raise UserError(f"archive {archive} does not exist: pass the file `twin pack` wrote")
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError):
        raise _refuse(archive, "it is not a readable tar archive") from None


def unpack(archive: Path, *, force: bool = False) -> UnpackResult:
    """Verify `archive` and register the twin it holds; an existing twin of that name only with `force`."""
    archive = archive.expanduser()
    with _open(archive) as tar:
        try:
            manifest, members = _members(archive, tar)
        except (tarfile.TarError, OSError, EOFError) as e:  # a truncated or scrambled archive
            raise _refuse(archive, f"it cannot be read to the end ({e})") from None
        name = manifest["name"]
        try:
            paths.check_name(name)
        except UserError:
            raise _refuse(archive, f"its twin's name {name!r} is not a valid name") from None
        final = paths.twin_dir(name)
        exists = final.exists() or final.is_symlink()
        if exists and not force:
            raise UserError(f"twin {name!r} already exists in {final}: pass --force to replace it, or remove it first")
        with twin_lock(name, "twin unpack"), writing(paths.twins_dir(), "unpacking the twin"):
            stage = temp_dir(final)
            try:
                for rel, member in members:
                    _extract(archive, tar, member, stage / rel, manifest["files"][rel]["sha256"])
                read_toml(stage / registry.TWIN_TOML, "the archive's twin.toml is broken: pack the twin again")
            except (tarfile.TarError, EOFError) as e:
                shutil.rmtree(stage, ignore_errors=True)
                raise _refuse(archive, f"it cannot be read to the end ({e})") from None
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                raise
            if exists:
                replace_dir(stage, final)
            else:
                os.replace(stage, final)  # the registration: the twin appears whole or not at all
    return UnpackResult(name, final, len(members), exists)
