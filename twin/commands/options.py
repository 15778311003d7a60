"""The flags of the training settings, declared from TrainConfig's fields: one help text and default for each.

`twin train` and `twin build` both take `--epochs`, `--lr`, …; each flag's help
is its field's `help` and its shown default the field's default, so the two
commands say the same thing. A flag is `--the-field-name` unless the field
names another (`flag`: `--per-reply` sets whole_conversations to False).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import typer

from trainer.train.config import TrainConfig  # a plain dataclass: its defaults, not the trainer

_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def default(name: str) -> Any:
    """TrainConfig's default of field `name`."""
    f = _FIELDS[name]
    if f.default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def train_option(name: str, help: str = "", show_default: bool = True) -> Any:
    """The typer option of TrainConfig field `name`: its flag, its help (or `help`) ending in its default.

    A command passes the default itself (`= default(name)`, or None where unset flags must be told apart), and
    typer shows none: the help says it, the same in both commands.
    """
    f = _FIELDS[name]
    value = default(name)
    text = help or f.metadata["help"]
    if isinstance(value, bool):  # an on/off flag: off unless given
        return typer.Option(f.metadata.get("flag") or f"--{name.replace('_', '-')}", help=text, show_default=False)
    # a list, "the twin's dataset/" or a help that starts with the default say it in words
    if show_default and value != [] and value != "" and not f.metadata.get("default_in_help"):
        text += f" Default: {value:g}." if isinstance(value, float) else f" Default: {value}."
    return typer.Option(help=text, show_default=False)
