"""Cleaning message text: links and personal data become typed placeholders; emoji optionally go.

Placeholders keep the shape of a message ("call me at <PHONE>") so a model
learns that people send numbers without learning the numbers. Candidates are
checked before they are replaced: card numbers by Luhn, IBANs by their mod-97
check digits, IP addresses by `ipaddress`, so dates, sums and times stay.
"""

from __future__ import annotations

import ipaddress
import re

import regex

KINDS = ("url", "email", "phone", "card", "iban", "ip")
PLACEHOLDERS = {
    "url": "<URL>",
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "card": "<CARD>",
    "iban": "<IBAN>",
    "ip": "<IP>",
}

_TLDS = "com|net|org|ru|su|рф|io|me|ly|gl|be|tv|info|dev|app|co|uk|de|ua|by|kz|us|eu|gg|so|to|link|site|online|pro"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_PATTERN = re.compile(
    r"(?P<email>(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-]))"
    r"|(?P<url>(?:\b(?:https?|ftp)://|(?<![\w@.])www\.)[^\s<>\"]+"
    rf"|(?<![\w@.:/-])(?:[a-z0-9-]+\.)+(?:{_TLDS})(?![\w-]|\.\w)(?:/[^\s<>\"]*)?)"
    r"|(?P<iban>\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b)"
    rf"|(?P<ip4>(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)(?!\w))"
    r"|(?P<ip6>(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:]))"
    r"|(?P<digits>(?<![\w+])\+?\(?\d(?:[ \-().]{0,2}\d){6,60}(?!\w))",
    re.IGNORECASE,
)
# Scanning with _PATTERN costs ~0.5 µs a character; these cheap hints pick the few texts that need it.
_TLD_HINT = re.compile(rf"\.(?:{_TLDS})(?![\w-])")
_DIGITS_HINT = re.compile(r"[0-9][0-9 ().\-]{5,}[0-9]")
_NON_DIGITS = re.compile(r"\D")
_GROUPS = re.compile(r"\d+")
_THOUSANDS = re.compile(r"^\d{1,3}(?:[ .,]\d{3})+$")
_URL_TAIL = ".,;:!?)]}»\"'…"

EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Emoji_Modifier}\p{Regional_Indicator}\uFE0F\u200D\u20E3]+")
# One emoji as a person sees it: a pictograph with its modifiers and joined parts, or a flag.
EMOJI_CLUSTER = regex.compile(
    r"\p{Regional_Indicator}{2}"
    r"|\p{Extended_Pictographic}[\uFE0F\p{Emoji_Modifier}]*(?:\u200D\p{Extended_Pictographic}[\uFE0F\p{Emoji_Modifier}]*)*"
)
_SPACES = re.compile(r"[ \t]{2,}")
# Every pictograph lies at or above U+203C; ordinary text (Latin, Cyrillic) lies below and skips the emoji scan.
_HIGH = re.compile("[\u203c-\U0010ffff]")


class Cleaner:
    """Replaces the enabled kinds of personal data with placeholders and, if asked, removes emoji."""

    def __init__(self, replace: frozenset[str] = frozenset(KINDS), strip_emoji: bool = False) -> None:
        unknown = set(replace) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}")
        self.replace = frozenset(replace)
        self.strip_emoji = strip_emoji
        self.counts = dict.fromkeys(KINDS, 0)

    def __call__(self, text: str) -> str:
        """The cleaned text ('' when nothing is left)."""
        if self.replace and _worth_scanning(text):
            text = _PATTERN.sub(self._sub, text)
        if self.strip_emoji and _HIGH.search(text):
            stripped = EMOJI.sub("", text)
            if stripped != text:
                text = "\n".join(_SPACES.sub(" ", line).strip() for line in stripped.split("\n")).strip()
        return text

    def entity(self, kind: str, text: str) -> str:
        """A span the export itself marked as a link, phone, e-mail or card: its placeholder if enabled."""
        if kind in self.replace:
            self.counts[kind] += 1
            return PLACEHOLDERS[kind]
        return text

    def _sub(self, m: re.Match) -> str:
        kind = m.lastgroup
        found = m.group()
        if kind == "url":
            tail = ""
            while found and found[-1] in _URL_TAIL and not (found[-1] == ")" and "(" in found):
                tail = found[-1] + tail
                found = found[:-1]
            return self._placeholder("url", found) + tail
        if kind == "email":
            return self._placeholder("email", found)
        if kind == "iban":
            return self._placeholder("iban", found) if _iban_ok(found) else found
        if kind == "ip4":
            return self._placeholder("ip", found)
        if kind == "ip6":
            return self._placeholder("ip", found) if _ipv6_ok(found) else found
        return self._digits(found)

    def _digits(self, found: str) -> str:
        kind = _number_kind(found)
        if kind is not None:
            return self._placeholder(kind, found)
        # Several numbers in a row ("+7 916 123-45-67 4111 1111 1111 1111"): cards first, then phones,
        # each time the longest run of space-separated pieces that forms one.
        items = [(word, False) for word in found.split(" ")]
        for wanted in ("card", "phone"):
            out: list[tuple[str, bool]] = []
            i = 0
            while i < len(items):
                for j in range(len(items), i, -1):
                    run = items[i:j]
                    piece = " ".join(w for w, _ in run)
                    if not any(done for _, done in run) and _number_kind(piece) == wanted:
                        out.append((self._placeholder(wanted, piece), True))
                        i = j
                        break
                else:
                    out.append(items[i])
                    i += 1
            items = out
        return " ".join(w for w, _ in items)

    def _placeholder(self, kind: str, found: str) -> str:
        if kind not in self.replace:
            return found
        self.counts[kind] += 1
        return PLACEHOLDERS[kind]


def _worth_scanning(text: str) -> bool:
    return (
        "@" in text
        or "://" in text
        or "www." in text
        or "::" in text
        or _DIGITS_HINT.search(text) is not None
        or _TLD_HINT.search(text) is not None
        or (":" in text and text.count(":") >= 7)
    )


def _number_kind(found: str) -> str | None:
    """'card' (13–19 digits passing Luhn), 'phone', or None for other numbers."""
    digits = _NON_DIGITS.sub("", found)
    n = len(digits)
    if 13 <= n <= 19 and _card_shape(found) and _luhn_ok(digits):
        return "card"
    if _phone_like(found, n):
        return "phone"
    return None


def _card_shape(found: str) -> bool:
    """Written as cards are: one block, or groups of 4 (Amex 4-6-5), joined by spaces or dashes."""
    if found[0] == "+" or "." in found or "(" in found:
        return False
    groups = _GROUPS.findall(found)
    return len(groups) == 1 or (len(groups[0]) == 4 and all(3 <= len(g) <= 6 for g in groups))


def _phone_like(found: str, n: int) -> bool:
    """A run of digits a person would call: +7 916 123-45-67, 8(916)1234567, (555) 123-4567, 123-45-67."""
    if found.startswith("+"):
        return 7 <= n <= 15
    if "." in found or _THOUSANDS.match(found):
        return False  # dates (12.05.2023) and sums (1 000 000)
    groups = _GROUPS.findall(found)
    if len(groups) >= 3 and all(len(g) == 4 for g in groups):
        return False  # years in a row: 2021 2022 2023
    if 10 <= n <= 12:
        return True
    return n == 7 and re.fullmatch(r"\d{3}-\d{2}-\d{2}", found) is not None


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(found: str) -> bool:
    code = found.replace(" ", "").upper()
    if not 15 <= len(code) <= 34:
        return False
    moved = code[4:] + code[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _ipv6_ok(found: str) -> bool:
    if sum(1 for part in found.split(":") if part) < 2:
        return False
    try:
        ipaddress.IPv6Address(found)
    except ValueError:
        return False
    return True


def emoji_in(text: str) -> list[str]:
    """The emoji of a text, each as one cluster (👍🏽, 👨‍👩‍👧, 🇷🇺 count once)."""
    if _HIGH.search(text) is None:
        return []
    return EMOJI_CLUSTER.findall(text)
