"""Who is "me" in an export: `--me` names or Telegram ids, or the account's owner.

Every message's sender is counted, so when the choice is missing, wrong or
ambiguous the error can list who wrote in the file and how much.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from twin.errors import UserError

_ID = re.compile(r"^(?:user)?(\d+)$")
_LISTED = 8
# Direction marks and embeddings WhatsApp puts around names and phone numbers (LRM, RLM, ALM, LRE…PDF,
# LRI…PDI) and the BOM: invisible, so nobody can type them in --me.
_INVISIBLE = dict.fromkeys([0x200E, 0x200F, 0x061C, 0xFEFF, *range(0x202A, 0x202F), *range(0x2066, 0x206A)], None)


def normalize_name(name: str) -> str:
    """A sender's name as a person would type it: no invisible marks, NFC, single spaces."""
    if not name.isascii():
        name = unicodedata.normalize("NFC", name.translate(_INVISIBLE))
    return " ".join(name.split())


def parse_me(values: tuple[str, ...] | list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """`--me` values as (Telegram ids like 'user123', casefolded display names)."""
    ids, names = set(), set()
    for value in values:
        value = value.strip()
        m = _ID.match(value)
        if m:
            ids.add(f"user{m[1]}")
        elif value:
            names.add(normalize_name(value).casefold())
    return frozenset(ids), frozenset(names)


class Senders:
    """Who wrote in one file, and which of them is me."""

    def __init__(self, path: Path, me: tuple[str, ...], owner_id: str | None = None) -> None:
        self.path = path
        self.me = me
        self.ids, self.names = parse_me(me)
        if not me and owner_id:
            self.ids = frozenset({owner_id})
        self.counts: dict[tuple[str, str], int] = {}
        self.matched_by_name: dict[str, set[str]] = {}  # casefolded --me name → sender ids it matched
        self.mine = 0

    def set_owner(self, owner_id: str | None) -> None:
        """A whole-account export names its owner: that is me unless --me says otherwise."""
        if not self.me and owner_id:
            self.ids = frozenset({owner_id})

    def is_me(self, sender_id: str, sender: str) -> bool:
        key = (sender_id, sender)
        count = self.counts.get(key)
        self.counts[key] = (count or 0) + 1
        if sender_id in self.ids:
            self.mine += 1
            return True
        if not self.names:
            return False
        folded = normalize_name(sender).casefold()
        if folded in self.names:
            self.matched_by_name.setdefault(folded, set()).add(sender_id)
            self.mine += 1
            return True
        return False

    def listing(self) -> str:
        """'Anna (user2) 120, Bob 80, …' — the senders by message count."""
        per_id: dict[str, list] = {}
        for (sid, name), n in self.counts.items():
            entry = per_id.setdefault(normalize_name(sid), [normalize_name(name), 0])
            entry[1] += n
        ranked = sorted(per_id.items(), key=lambda kv: -kv[1][1])
        parts = [_describe(sid, name, n) for sid, (name, n) in ranked[:_LISTED]]
        if len(ranked) > _LISTED:
            parts.append(f"and {len(ranked) - _LISTED} more")
        return ", ".join(parts) if parts else "nobody"

    def check(self, needs_me: bool) -> None:
        """After the file: raise the UserError that says what is wrong with 'me', if anything is."""
        for folded, sids in self.matched_by_name.items():
            if len(sids) > 1:
                counts = [(sid, name, n) for (sid, name), n in self.counts.items() if sid in sids]
                shown = ", ".join(_describe(sid, name, n) for sid, name, n in sorted(counts, key=lambda c: -c[2]))
                example = max(counts, key=lambda c: c[2])[0]
                raise UserError(
                    f"{_safe(self.path)}: --me {_safe(folded)!r} matches {len(sids)} different senders ({shown}): "
                    f"pass the id of the right one, e.g. --me {_safe(example)}"
                )
        if self.mine:
            return
        if not self.me and not self.ids and needs_me:
            raise UserError(
                f"{_safe(self.path)}: which sender are you? pass --me with your name or Telegram id; "
                f"senders: {self.listing()}"
            )
        who = ", ".join(self.me) if self.me else "the account's owner"
        raise UserError(
            f"{_safe(self.path)}: no messages from {_safe(who)}: pass --me with one of the senders: {self.listing()}"
        )


def _describe(sid: str, name: str, n: int) -> str:
    shown = _safe(name) if name == sid else f"{_safe(name)} ({_safe(sid)})"
    return f"{shown} {n}"


def _safe(value: object) -> str:
    """Printable on one line whatever the export holds (lone surrogates, newlines)."""
    return str(value).encode("utf-8", "replace").decode("utf-8").replace("\n", " ").replace("\r", " ")
