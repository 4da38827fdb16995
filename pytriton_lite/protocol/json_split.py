"""Large JSON tensor data parsed and written in pieces, so that a worker thread yields the GIL between them.

``json.loads`` / ``json.dumps`` of a whole document is one C call: on a worker thread it still holds the
GIL for its whole length (about a second for 4M floats), and the serving loop waits that long. Here the
large ``data`` arrays of an infer request are cut out of the document and parsed a slice at a time, and a
response's large ``data`` lists are written a slice at a time; the result is the same as in one call.

Decoding splits only flat arrays without strings (numbers, booleans, null, NaN): there a comma always
separates two elements. Anything it cannot place exactly (a ``data`` key outside ``inputs``, a duplicate
key) is parsed whole instead, so the document's meaning never changes.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Callable, Dict, List, Tuple

SPLIT_BYTES = 1 << 20  # documents smaller than this are parsed in one call
_PIECE_BYTES = 1 << 17  # JSON text per parse call (a few ms)
_PIECE_ITEMS = 1 << 15  # list items per write call
_MAX_SEGMENTS = 64
_DATA_KEY = re.compile(rb'"data"\s*:\s*\[')


def loads_split(data: Any, loads: Callable[[Any], Any]) -> Any:
    """``loads(data)``, with each large flat ``inputs[i].data`` array parsed in pieces."""
    if isinstance(data, (memoryview, bytearray)):
        data = bytes(data)
    if not isinstance(data, bytes) or len(data) < SPLIT_BYTES:
        return loads(data)
    segments = _segments(data)
    if not segments:
        return loads(data)
    token = secrets.token_hex(16)
    skeleton: List[Any] = []
    position = 0
    for index, (start, end) in enumerate(segments):
        skeleton += [data[position:start], b'"%s-%d"' % (token.encode(), index)]
        position = end + 1
    skeleton.append(data[position:])
    doc = loads(b"".join(skeleton))
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    placed = 0
    for entry in inputs if isinstance(inputs, list) else ():
        value = entry.get("data") if isinstance(entry, dict) else None
        if isinstance(value, str) and value.startswith(token):
            start, end = segments[int(value[len(token) + 1 :])]
            entry["data"] = _array(data, start, end, loads)
            placed += 1
    if placed != len(segments):
        return loads(data)  # a marker landed elsewhere (or was overwritten): parse it as it is
    return doc


def _segments(data: Any) -> List[Tuple[int, int]]:
    """(``[`` index, ``]`` index) of each large, flat, string-free array that follows a ``"data":`` key."""
    found: List[Tuple[int, int]] = []
    position = 0
    while len(found) < _MAX_SEGMENTS:
        match = _DATA_KEY.search(data, position)
        if match is None:
            break
        start = match.end() - 1
        end = data.find(b"]", start)
        if end < 0:
            break
        flat = all(data.find(mark, start + 1, end) < 0 for mark in (b'"', b"[", b"{", b"}"))
        if flat and end - start > _PIECE_BYTES:
            found.append((start, end))
        position = end + 1
    return found


def _array(data: Any, start: int, end: int, loads: Callable[[Any], Any]) -> List[Any]:
    items: List[Any] = []
    position = start + 1
    while position <= end:
        cut = data.find(b",", min(position + _PIECE_BYTES, end), end)
        stop = end if cut < 0 else cut
        piece = data[position:stop]
        if not piece.strip():
            raise ValueError(f"Expecting value: char {position}")  # "[1,]", "[,1]", "[1,,2]"
        items.extend(loads(b"[" + piece + b"]"))
        position = stop + 1
    return items


def dumps_split(
    doc: Dict[str, Any], big: List[Tuple[Dict[str, Any], List[Any]]], dumps: Callable[[Any], bytes]
) -> bytes:
    """``dumps(doc)`` where each ``(entry, data)`` of ``big`` gets ``entry["data"] = data``, written in pieces."""
    if not big:
        return dumps(doc)
    token = secrets.token_hex(16)
    for index, (entry, _) in enumerate(big):
        entry["data"] = f"{token}-{index}"
    text = dumps(doc)
    parts: List[bytes] = []
    position = 0
    for index, (_, data) in enumerate(big):
        marker = b'"%s-%d"' % (token.encode(), index)
        at = text.index(marker, position)
        parts.append(text[position:at])
        pieces = [dumps(data[i : i + _PIECE_ITEMS])[1:-1] for i in range(0, len(data), _PIECE_ITEMS)]
        parts += [b"[", b",".join(pieces), b"]"]
        position = at + len(marker)
    parts.append(text[position:])
    return b"".join(parts)


SPLIT_ITEMS = _PIECE_ITEMS * 2  # lists longer than this are worth writing in pieces

__all__ = ["SPLIT_BYTES", "SPLIT_ITEMS", "dumps_split", "loads_split"]
