"""`twin pack` / `twin unpack`: a twin moved to a fresh TWIN_HOME is served there; a bad archive changes nothing."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import openai
import pytest

from daemon.process import DaemonProcess
from twin import embedded, paths, registry

PERSONA = {"system_prompt": "You write short, casual messages."}


@pytest.fixture
def run_cli(capsys):
    """run_cli(["pack", …]) through the real entry point: (exit code, stdout, stderr)."""
    from twin.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main(args)
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def alice(twin_home: Path) -> Path:
    """Twin `alice`: the embedded GGUF as its model, a persona, a small adapter folder, a dataset."""
    folder = paths.private_dir(paths.twin_dir("alice"))
    paths.private_dir(folder / "dataset")
    (folder / "dataset" / "val.jsonl").write_text('{"messages": []}\n', encoding="utf-8")
    paths.private_dir(folder / "adapter")
    (folder / "adapter" / "adapter_config.json").write_text('{"r": 16}', encoding="utf-8")
    (folder / "model-q4_1.gguf").symlink_to(embedded.embedded_gguf())  # packing reads through it
    (folder / "persona.json").write_text(json.dumps(PERSONA), encoding="utf-8")
    registry.update("alice", "dataset", {"inputs": ["result.json"]})
    registry.update("alice", "model", {"gguf": "model-q4_1.gguf", "quant": "q4_1"})
    registry.update("alice", "persona", {"file": "persona.json", "base": "default"})
    return folder


def _names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def _move_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    monkeypatch.setenv("TWIN_HOME", str(home))
    return home


def _left_behind(home: Path) -> list[str]:
    twins = home / "twins"
    return sorted(p.name for p in twins.iterdir()) if twins.is_dir() else []


def test_pack_then_unpack_in_a_fresh_home_is_served(alice, run_cli, tmp_path, monkeypatch):
    archive = tmp_path / "out" / "alice.twin.tar"
    code, out, err = run_cli(["pack", "alice", "-o", str(archive)])
    assert code == 0, err
    assert "without its dataset" in out
    assert archive.stat().st_mode & 0o777 == 0o600
    names = _names(archive)
    assert names[-1] == "manifest.json"
    assert set(names) == {
        "twin/twin.toml",
        "twin/model-q4_1.gguf",
        "twin/persona.json",
        "twin/adapter/adapter_config.json",
        "manifest.json",
    }
    with tarfile.open(archive) as tar:
        packed_toml = tar.extractfile("twin/twin.toml").read().decode()
    assert "[dataset]" not in packed_toml  # it names the exports: private unless --with-data

    home = _move_home(monkeypatch, tmp_path, "fresh-home")
    code, out, err = run_cli(["unpack", str(archive)])
    assert code == 0, err
    folder = home / "twins" / "alice"
    assert registry.names() == ["alice"]
    assert (folder / "model-q4_1.gguf").read_bytes()[:4] == b"GGUF" and not (folder / "model-q4_1.gguf").is_symlink()
    assert not (folder / "dataset").exists()
    for path in [folder, *folder.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path

    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")} | {"TWIN_HOME": str(home)}
    args = ["--model", "alice", "--n-ctx", "512", "--threads", "1"]
    with DaemonProcess(args, env=env, log_path=tmp_path / "serve.log") as d:
        client = openai.OpenAI(base_url=d.url, api_key="unused", max_retries=0)
        assert {"alice", "alice-prompt"} <= {m.id for m in client.models.list().data}
        reply = client.chat.completions.create(
            model="alice", messages=[{"role": "user", "content": "Hi! How are you?"}], max_tokens=4, seed=1
        )
        assert reply.choices[0].message.content and reply.usage.completion_tokens > 0


def test_with_data_packs_the_dataset(alice, run_cli, tmp_path):
    archive = tmp_path / "a.tar"
    assert run_cli(["pack", "alice", "-o", str(archive), "--with-data"])[0] == 0
    assert "twin/dataset/val.jsonl" in _names(archive)


def test_unpack_refuses_an_existing_twin_without_force(alice, run_cli, tmp_path):
    archive = tmp_path / "a.tar"
    assert run_cli(["pack", "alice", "-o", str(archive)])[0] == 0
    (alice / "persona.json").write_text(json.dumps({"system_prompt": "changed"}), encoding="utf-8")
    code, _, err = run_cli(["unpack", str(archive)])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--force" in err
    assert json.loads((alice / "persona.json").read_text())["system_prompt"] == "changed"

    assert run_cli(["unpack", str(archive), "--force"])[0] == 0
    assert json.loads((alice / "persona.json").read_text()) == PERSONA
    assert not (alice / "dataset").exists()  # replaced as a whole by what the archive holds
    assert _left_behind(alice.parent.parent) == ["alice"]


def _corrupt(archive: Path) -> None:
    """Flip one byte inside the GGUF's data, leaving the tar structure intact."""
    with tarfile.open(archive) as tar:
        member = tar.getmember("twin/model-q4_1.gguf")
    with open(archive, "r+b") as f:
        f.seek(member.offset_data + member.size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))


def _truncate(archive: Path) -> None:
    os.truncate(archive, archive.stat().st_size // 2)


def _not_a_tar(archive: Path) -> None:
    archive.write_bytes(b"GGUF" + b"\0" * 100)


@pytest.mark.parametrize("damage, says", [(_corrupt, "SHA-256"), (_truncate, "twin pack"), (_not_a_tar, "tar")])
def test_a_damaged_archive_is_refused_and_registers_nothing(alice, run_cli, tmp_path, monkeypatch, damage, says):
    archive = tmp_path / "a.tar"
    assert run_cli(["pack", "alice", "-o", str(archive)])[0] == 0
    damage(archive)
    home = _move_home(monkeypatch, tmp_path, "fresh-home")
    code, out, err = run_cli(["unpack", str(archive)])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and says in err
    assert registry.names() == [] and _left_behind(home) == []


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "member",
    [
        _file("twin/../../escaped.txt"),
        _file("/etc/twin-owned.txt"),
        _file("elsewhere/twin.toml"),
        _link("twin/twin.toml", "/etc/passwd", tarfile.SYMTYPE),
        _link("twin/twin.toml", "/etc/passwd", tarfile.LNKTYPE),
    ],
    ids=["dotdot", "absolute", "outside-root", "symlink", "hardlink"],
)
def test_members_outside_the_twin_or_links_are_refused(run_cli, tmp_path, twin_home, member):
    manifest = json.dumps({"format": "twin-pack", "version": 1, "name": "evil", "files": {}}).encode()
    archive = tmp_path / "evil.tar"
    archive.write_bytes(_tar([(member, b"x = 1\n"), (_file("manifest.json"), manifest)]))
    code, _, err = run_cli(["unpack", str(archive)])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "refusing it" in err
    assert registry.names() == [] and _left_behind(twin_home) == []
    assert not (tmp_path / "escaped.txt").exists()


def test_pack_of_an_unknown_twin_is_one_line(run_cli):
    code, _, err = run_cli(["pack", "nobody"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no twin named 'nobody'" in err


def test_help_of_pack_and_unpack_names_their_options(run_cli):
    code, out, _ = run_cli(["pack", "--help"])
    assert code == 0 and "--with-data" in out and "--output" in out
    code, out, _ = run_cli(["unpack", "--help"])
    assert code == 0 and "--force" in out
