"""Cleaning message text: links and personal data become typed placeholders; emoji optionally go.

Placeholders keep the shape of a message ("call me at <PHONE>") so a model
learns that people send numbers without learning the numbers. Candidates are
checked before they are replaced: card numbers by Luhn (or by their 4-4-4-4
grouping), IBANs by their mod-97 check digits, SNILS and INN by theirs, IP
addresses by `ipaddress`, so dates, sums and times stay. Kinds that only words
around them tell (a passport number, a date of birth, a street address, an
e-mail spelt "at … dot") are matched with those words.
"""

from __future__ import annotations

import ipaddress
import re

from trainer import style

KINDS = ("url", "email", "phone", "card", "iban", "ip", "username", "account", "passport", "id", "address", "birthdate")
PLACEHOLDERS = {
    "url": "<URL>",
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "card": "<CARD>",
    "iban": "<IBAN>",
    "ip": "<IP>",
    "username": "<USERNAME>",
    "account": "<ACCOUNT>",
    "passport": "<PASSPORT>",
    "id": "<ID>",
    "address": "<ADDRESS>",
    "birthdate": "<BIRTHDATE>",
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
_AT = r"(?:\s*[\[(]\s*(?:at|собака)\s*[\])]\s*|\s+(?:at|собака)\s+)"
_DOT = r"(?:\s*[\[(]\s*(?:dot|точка)\s*[\])]\s*|\s+(?:dot|точка)\s+|\.)"
_NUMBER_WORDS = r"(?:\s*(?:no\.?|number|num\.?|#|№|серия|и|номер|:|-))*\s*"
_DATE_TEXT = r"\d{1,2}[./-]\d{1,2}[./-](?:19|20)?\d{2}|\d{1,2}\s+[^\W\d_]{3,9}\.?\s+(?:19|20)\d{2}"
# Kinds told by the words around them; scanned first, so their digits never reach the number rules.
_WORDED = re.compile(
    rf"(?P<email>(?<![\w.+-])[\w.+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}(?:{_TLDS})(?![\w-]))"
    r"|(?P<address>(?<!\w)(?:ул\.?|улица|пр-т|просп\.?|проспект|пер\.?|переулок|б-р|бульвар|ш\.|шоссе|наб\.?|набережная"
    r"|пл\.?|площадь|мкр\.?|микрорайон)\s+[^\W\d_][\w.-]*(?:\s+[^\W\d_][\w.-]*){0,2},?\s*(?:д\.?|дом)\s*\d+[а-яa-z]?(?:/\d+)?"
    r"(?:,?\s*(?:корп\.?|к\.|стр\.?|строение)\s*\d+)?(?:,?\s*(?:кв\.?|квартира|оф\.?|офис)\s*\d+)?"
    r"|(?<![\w-])\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr"
    r"|Court|Ct|Way|Place|Pl|Square|Sq|Terrace|Crescent)\b\.?(?:,?\s*(?:Apt|Apartment|Suite|Unit|Flat|#)\.?\s*\w+)?)"
    rf"|(?P<passport>(?<!\w)(?:паспорт\w*|passport)(?:\s+(?:РФ|RF))?{_NUMBER_WORDS}"
    r"(?P<passport_number>[A-Z]{0,2}\s?\d{2}\s?\d{2}\s?\d{5,7}|[A-Z]{1,2}\d{6,9})(?!\w))"
    r"|(?P<birthdate>(?<!\w)(?:д\.\s?р\.?|дата рождения|родил(?:ся|ась)|born(?: on)?|date of birth|d\.?o\.?b\.?"
    rf"|birthday(?: is)?)\s*:?\s*(?P<birthdate_date>{_DATE_TEXT})(?!\w))"
    r"|(?P<username>(?<![\w.@/])@[A-Za-z][A-Za-z0-9_]{3,31}(?![\w@]))",
    re.IGNORECASE,
)
_WORDED_HINT = re.compile(
    r"@|\b(?:at|собака)\b|[\[(]at[\])]|ул\.|улиц|просп|пр-т|переул|бульв|шоссе|набер|наб\.|площад|мкр|микрорайон"
    r"|\d\s+[A-Z][a-z]+\s|паспорт|passport|рожд|родил|д\.\s?р\.|born|birth|d\.?o\.?b",
    re.IGNORECASE,
)
_INN_WORD = re.compile(r"(?:инн|inn)\W{0,3}$", re.IGNORECASE)
_SNILS_WORD = re.compile(r"(?:снилс|snils)\W{0,3}$", re.IGNORECASE)
_YEAR = re.compile(r"^(?:19|20)\d\d$")
# Scanning with _PATTERN costs ~0.5 µs a character; these cheap hints pick the few texts that need it.
_TLD_HINT = re.compile(rf"\.(?:{_TLDS})(?![\w-])")
_DIGITS_HINT = re.compile(r"[0-9][0-9 ().\-]{5,}[0-9]")
_NON_DIGITS = re.compile(r"\D")
_GROUPS = re.compile(r"\d+")
_THOUSANDS = re.compile(r"^\d{1,3}(?:[ .,]\d{3})+$")
_URL_TAIL = ".,;:!?)]}»\"'…"

_SPACES = re.compile(r"[ \t]{2,}")


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
        if self.replace and _WORDED_HINT.search(text):
            text = _WORDED.sub(self._worded, text)
        if self.replace and _worth_scanning(text):
            text = _PATTERN.sub(self._sub, text)
        if self.strip_emoji:
            stripped = style.strip_emoji(text)
            if stripped != text:
                text = "\n".join(_SPACES.sub(" ", line).strip() for line in stripped.split("\n")).strip()
        return text

    def entity(self, kind: str, text: str) -> str:
        """A span the export itself marked as a link, phone, e-mail or card: its placeholder if enabled."""
        if kind in self.replace:
            self.counts[kind] += 1
            return PLACEHOLDERS[kind]
        return text

    def _worded(self, m: re.Match) -> str:
        kind = m.lastgroup or ""
        found = m.group()
        if kind in ("passport", "birthdate"):
            # the words stay ("паспорт 45 08 …" → "паспорт <PASSPORT>"); only the value after them goes
            value = f"{kind}_number" if kind == "passport" else "birthdate_date"
            cut = m.start(value) - m.start()
            return found[:cut] + self._placeholder(kind, m.group(value))
        return self._placeholder(kind, found)

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
        return self._digits(found, m.string[max(0, m.start() - 12) : m.start()])

    def _digits(self, found: str, before: str = "") -> str:
        kind = _number_kind(found, before)
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


def _number_kind(found: str, before: str = "") -> str | None:
    """What a run of digits is: 'account', 'id', 'passport', 'card', 'phone', or None for other numbers.

    Told by length, grouping and check digits; `before` is the text just before
    it ("ИНН ", "СНИЛС: "), for the numbers only such a word tells apart.
    """
    digits = _NON_DIGITS.sub("", found)
    n = len(digits)
    if found[0] != "+" and "." not in found and "(" not in found:
        lens = tuple(len(g) for g in _GROUPS.findall(found))
        if n == 20 and lens in ((20,), (5, 3, 1, 4, 7), (5, 3, 1, 11)):
            return "account"  # a Russian bank account (расчётный счёт): 20 digits
        if n == 11 and (lens in ((3, 3, 3, 2), (9, 2)) or _SNILS_WORD.search(before)) and _snils_ok(digits):
            return "id"  # СНИЛС
        if n == 12 and lens == (12,) and _inn_ok(digits):
            return "id"  # ИНН of a person
        if n == 10 and lens == (10,) and _INN_WORD.search(before) and _inn_ok(digits):
            return "id"  # ИНН of an organisation
        if n == 9 and lens == (3, 2, 4) and "-" in found:
            return "id"  # US social security number
        if n == 10 and lens in ((2, 2, 6), (4, 6)):
            return "passport"  # Russian passport: series 45 08, number 123456
    if 13 <= n <= 19 and _card_shape(found) and (_luhn_ok(digits) or _grouped_card(found)):
        return "card"
    if _phone_like(found, n):
        return "phone"
    return None


def _grouped_card(found: str) -> bool:
    """Written as a card in 4-digit groups (a mistyped one still is a card), unless the groups are years."""
    groups = _GROUPS.findall(found)
    return len(groups) == 4 and all(len(g) == 4 for g in groups) and not all(_YEAR.match(g) for g in groups)


def _snils_ok(digits: str) -> bool:
    total = sum(int(d) * (9 - i) for i, d in enumerate(digits[:9]))
    check = total if total < 100 else 0 if total in (100, 101) else total % 101
    return (0 if check == 100 else check) == int(digits[9:])


def _inn_ok(digits: str) -> bool:
    def check(weights: tuple[int, ...], upto: int) -> bool:
        return sum(w * int(d) for w, d in zip(weights, digits[:upto], strict=False)) % 11 % 10 == int(digits[upto])

    if len(digits) == 10:
        return check((2, 4, 10, 3, 5, 9, 4, 6, 8), 9)
    return check((7, 2, 4, 10, 3, 5, 9, 4, 6, 8), 10) and check((3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8), 11)


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
