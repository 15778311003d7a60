"""Commands that take a twin elsewhere: export (to Ollama), pack and unpack (to another machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.errors import UserError


def export_cmd(
    name: Annotated[str, typer.Argument(help="The twin to export (twins/NAME).", show_default=False)],
    ollama: Annotated[
        Path | None,
        typer.Option("--ollama", help="Folder to write the GGUF and its Ollama Modelfiles into.", show_default=False),
    ] = None,
) -> None:
    """Export a twin for another runtime: `--ollama DIR` writes its GGUF and Modelfiles for `ollama create`."""
    if ollama is None:
        raise UserError("say where to export: `twin export NAME --ollama DIR` (Ollama is the one export format)")
    from convert.ollama import export_ollama

    result = export_ollama(name, ollama)
    print(f"wrote {result.gguf} and {', '.join(str(m.path) for m in result.modelfiles)}")
    print(f"template: {result.family}; stop: {', '.join(result.stops)}")
    print("then:")
    for line in result.commands():
        print(f"  {line}")


def pack_cmd(
    name: Annotated[str, typer.Argument(help="The twin to pack (twins/NAME).", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Archive to write. [default: ./NAME.twin.tar]")
    ] = None,
    with_data: Annotated[
        bool,
        typer.Option("--with-data", help="Also pack the dataset (your private messages: off unless you ask)."),
    ] = False,
) -> None:
    """Write one archive of a twin (twin.toml, GGUF, persona, adapter, a manifest of SHA-256 hashes)."""
    from twin.pack import pack

    result = pack(name, output, with_data=with_data)
    data = "with its dataset" if result.with_data else "without its dataset (--with-data adds it)"
    print(f"packed twin {name!r}, {result.files} files, {result.bytes / 2**20:.1f} MB, {data}: {result.path}")
    print(f"on the other machine: twin unpack {result.path.name}")


def unpack_cmd(
    archive: Annotated[Path, typer.Argument(help="An archive written by `twin pack`.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace a twin of the same name.")] = False,
) -> None:
    """Verify a `twin pack` archive's hashes and register the twin it holds."""
    from twin.pack import unpack

    result = unpack(archive, force=force)
    verb = "replaced" if result.replaced else "registered"
    print(f"{verb} twin {result.name!r} ({result.files} files verified): {result.folder}")
    print(f"serve it: twin serve --model {result.name}")
