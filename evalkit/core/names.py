"""Names from outside (checkpoint, dataset and domain folder names) made safe to write.

A folder name may hold any character but ``/`` and NUL: newlines, terminal escapes, bidi
overrides, ``<img ...>``, ``|``, quotes, and (for bytes that are not UTF-8) lone surrogates.
Each output format escapes its own markup (:mod:`evalkit.decide.gate.output`,
:mod:`evalkit.present.export`); the pieces every format shares live here.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

#: Format characters that reorder or hide text (bidi embeddings/overrides/isolates, the
#: zero-width ones); escaped like control characters so a name reads as what it is.
_HIDDEN = set("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
              "\u2060\u2066\u2067\u2068\u2069\ufeff")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return (cat in ("Cc", "Cs", "Zl", "Zp") or ch in _HIDDEN
            or ch in ("\ufffe", "\uffff"))


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def visible(text: str, keep: str = "") -> str:
    """``text`` with every control, surrogate, line/paragraph separator and hidden format
    character written as a visible escape (``\\n``, ``\\x1b``, ``\\u202e``), except the
    characters in ``keep``. The result is one printable line (unless ``keep`` has ``\\n``)
    that is legal in XML 1.0 and encodes as UTF-8."""
    if all(ch in keep or not _unsafe(ch) for ch in text):
        return text
    return "".join(ch if ch in keep or not _unsafe(ch) else _escape(ch) for ch in text)


#: What a tag or metric-key segment keeps: TensorBoard's own rule (``tf.summary`` replaces
#: every other character with ``_``), minus ``/`` (the segment separator).
_SEGMENT_BAD = re.compile(r"[^-\w.]")


def key_segment(name: str) -> str:
    """``name`` as one segment of a TensorBoard tag or MLflow metric key: characters other
    than letters, digits, ``_``, ``-`` and ``.`` become ``_``; a name that changed gets ``-``
    and 6 hex digits of its sha256, so two names never share a segment (``a<b`` and ``a>b``
    stay apart). Names already safe (and ``""``) are kept as they are."""
    clean = _SEGMENT_BAD.sub("_", name)
    if clean == name and name not in (".", ".."):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return f"{clean}-{digest}"
