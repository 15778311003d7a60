"""`twin convert` through the CLI: help, and --name writing into the twin and its registry."""

from __future__ import annotations

import shutil
from pathlib import Path

from twin import registry


def test_help_lists_the_options(cli) -> None:
    code, out, _ = cli(["--help"])
    assert code == 0
    for option in ("--name", "--model-dir", "--quant", "--output", "--val"):
        assert option in out


def test_a_twin_is_registered_and_its_old_gguf_replaced(tiny_model, twin_home: Path, cli) -> None:
    """--name writes into the twin and its registry; the GGUF registered before is removed, the new one is 0600."""
    twin = twin_home / "twins" / "bob"
    shutil.copytree(tiny_model("llama-bpe"), twin / "merged")
    code, out, _ = cli(["--name", "bob", "--quant", "f16"])
    assert code == 0 and "wrote" in out
    assert registry.read("bob")["model"]["gguf"] == "model-f16.gguf"
    code, _, _ = cli(["--name", "bob", "--quant", "q8_0"])
    assert code == 0
    assert registry.read("bob")["model"]["gguf"] == "model-q8_0.gguf"
    assert registry.read("bob")["model"]["quant"] == "q8_0"
    assert sorted(p.name for p in twin.glob("*.gguf*")) == ["model-q8_0.gguf"]
    assert oct((twin / "model-q8_0.gguf").stat().st_mode & 0o777) == "0o600"


def test_a_twin_converted_elsewhere_is_registered_by_absolute_path(
    tiny_model, twin_home: Path, tmp_path: Path, cli
) -> None:
    from daemon.catalog import twin_specs

    shutil.copytree(tiny_model("gpt2"), twin_home / "twins" / "carol" / "merged")
    target = tmp_path / "models" / "carol.gguf"
    code, _, err = cli(["--name", "carol", "--quant", "f16", "-o", str(target)])
    assert code == 0, err
    assert registry.read("carol")["model"]["gguf"] == str(target.resolve())
    assert [s.gguf for s in twin_specs("carol")] == [target.resolve()]
