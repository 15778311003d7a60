"""POST /v1/files: the multipart upload streamed to disk chunk by chunk, never whole in memory, under its own cap.

The file lands in `files/` of the data directory (0700), written 0600 under a
temporary name and renamed into place once complete: a broken upload leaves
nothing behind. It keeps the upload's suffix (`.json`, `.zip`, `.txt`), which
`twin ingest` reads as a hint.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from daemon.jobs.objects import FileObject
from daemon.jobs.store import Store, new_id
from daemon.schema import APIError
from twin import paths

CHUNK = 1 << 20
PURPOSES = ("fine-tune",)


def files_dir() -> Path:
    return paths.private_dir(paths.data_dir() / "files")


def _too_large(cap: int) -> APIError:
    return APIError(
        413,
        f"file too large: the limit is {cap // 2**20} MB (raise [serve] max_upload_mb to accept more)",
        param="file",
        code="file_too_large",
    )


def _suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


async def receive(request: web.Request, store: Store, cap: int) -> FileObject:
    """Read `purpose` and `file` from the multipart body; the file is on disk and in the store when this returns."""
    if request.content_length is not None and request.content_length > cap + CHUNK:
        raise _too_large(cap)
    if not request.content_type.startswith("multipart/"):
        raise APIError(400, "upload the file as multipart/form-data with the fields 'file' and 'purpose'", param="file")
    purpose: str | None = None
    saved: tuple[str, str, int, Path] | None = None
    try:
        try:
            reader = await request.multipart()
        except ValueError as e:  # no boundary, or one too long
            raise _malformed(e) from None
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "purpose":
                purpose = (await part.text()).strip()
            elif part.name == "file" and saved is None:
                saved = await _save(part, cap)
            else:
                await part.release()
        if saved is None:
            raise APIError(400, "Missing required parameter: 'file'", param="file")
        if purpose not in PURPOSES:
            raise APIError(
                400,
                f"Invalid value for 'purpose': {purpose!r}; this server takes only 'fine-tune' files",
                param="purpose",
            )
        file_id, filename, size, path = saved
        return store.add_file(file_id, filename, size, path)
    except BaseException:
        if saved is not None:
            with contextlib.suppress(FileNotFoundError):
                saved[3].unlink()
        raise


async def _next_part(reader: MultipartReader) -> Any:
    """The next part; a body that is not multipart as it claims (no boundary, a wrong one) is the client's 400."""
    try:
        return await reader.next()
    except (ValueError, RuntimeError, BadHttpMessage, AssertionError) as e:
        raise _malformed(e) from None


def _malformed(e: Exception) -> APIError:
    return APIError(
        400, f"malformed multipart/form-data body ({e}): send the fields 'file' and 'purpose'", param="file"
    )


async def _save(part: BodyPartReader, cap: int) -> tuple[str, str, int, Path]:
    filename = Path(part.filename or "upload").name or "upload"
    file_id = new_id("file")
    folder = files_dir()
    final = folder / f"{file_id}{_suffix(filename)}"
    tmp = folder / f".{final.name}.tmp"
    size = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await part.read_chunk(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise _too_large(cap)
                out.write(chunk)
        if size == 0:
            raise APIError(400, f"the uploaded file {filename!r} is empty", param="file")
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return file_id, filename, size, final
