"""How an SMS text is encoded and how many segments (billed messages) it takes.

GSM-7 (the default alphabet, 3GPP TS 23.038): 160 characters in one segment, 153 per segment
when split; the extension table's characters (``^{}\\[~]|€`` and form feed) take two.
Anything outside the alphabet makes the whole message UCS-2: 70 UTF-16 code units in one
segment, 67 per segment when split. A single curly quote or dash therefore more than
halves what fits; ``gsm7_friendly`` replaces the usual typographic look-alikes.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
# Typographic characters that would force UCS-2, and their GSM-7 stand-ins.
LOOKALIKES = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u2009": " ",
}
GSM7 = "GSM-7"
UCS2 = "UCS-2"


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # GSM7 or UCS2
    length: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    # Characters that made a text UCS-2 although the rest is GSM-7 (shown to editors).
    non_gsm: tuple[str, ...] = ()


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in text)


def gsm7_friendly(text: str) -> str:
    """``text`` with typographic look-alikes replaced, if that makes it GSM-7; else as is
    (a Cyrillic text is UCS-2 anyway, and its quotes and dashes may stay)."""
    replaced = "".join(LOOKALIKES.get(char, char) for char in text)
    return replaced if is_gsm7(replaced) else text


def sms_segments(text: str) -> SegmentInfo:
    if is_gsm7(text):
        length = sum(2 if char in GSM7_EXTENDED else 1 for char in text)
        segments = 1 if length <= 160 else -(-length // 153)
        return SegmentInfo(encoding=GSM7, length=length, segments=max(1, segments))
    length = len(text.encode("utf-16-le")) // 2
    segments = 1 if length <= 70 else -(-length // 67)
    non_gsm = tuple(
        sorted({char for char in text if char not in GSM7_BASIC and char not in GSM7_EXTENDED})
    )
    return SegmentInfo(encoding=UCS2, length=length, segments=max(1, segments), non_gsm=non_gsm)
