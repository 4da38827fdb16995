"""HTTP body compression: request bodies inflated under a size cap (one stream, nothing after it), responses
compressed with the encoding the client prefers. Pure functions; ``http_codec`` re-exports them.
"""

from __future__ import annotations

import zlib
from typing import Any, Iterable, Optional

from pytriton_lite.exceptions import InvalidArgumentError, UnsupportedError

__all__ = [
    "DEFAULT_MAX_INPUT_SIZE",
    "SUPPORTED_REQUEST_ENCODINGS",
    "UNSUPPORTED_COMPRESSION",
    "decompress_body",
    "select_response_encoding",
    "unsupported_compression",
]

DEFAULT_MAX_INPUT_SIZE = 1 << 26  # Triton's --http-max-input-size default (64 MiB)
SUPPORTED_REQUEST_ENCODINGS = ("identity", "gzip", "deflate")
UNSUPPORTED_COMPRESSION = "Unsupported compression type"  # 501, answered with Accept-Encoding: gzip, deflate
_COMPRESS_LEVEL = 1  # clients that ask for compression are better served fast than small


def unsupported_compression() -> UnsupportedError:
    """Triton's answer to a request body in an encoding it does not take: 501 naming the ones it does."""
    return UnsupportedError(UNSUPPORTED_COMPRESSION, headers=(("accept-encoding", "gzip, deflate"),))


def decompress_body(
    body: Any, content_encoding: Optional[str], max_size: Optional[int] = DEFAULT_MAX_INPUT_SIZE
) -> Any:
    """Undo ``Content-Encoding: gzip|deflate`` (deflate = zlib-wrapped); identity returns ``body`` as is.

    Other encodings raise
    ``UnsupportedError`` (501, "Unsupported compression type"); answer it with ``Accept-Encoding: gzip, deflate``.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        wbits = 31
    elif encoding == "deflate":
        wbits = 15
    else:
        raise unsupported_compression()
    decompressor = zlib.decompressobj(wbits)
    limit = max_size if max_size else 0
    try:
        out = decompressor.decompress(body, limit + 1 if limit else 0)
    except zlib.error as exc:
        raise InvalidArgumentError(f"failed to decompress the {encoding} request body: {exc}") from None
    if limit and (len(out) > limit or decompressor.unconsumed_tail):
        raise InvalidArgumentError(f"decompressed request size exceeds the maximum allowed input size of {limit} bytes")
    if not decompressor.eof:
        raise InvalidArgumentError(f"failed to decompress the {encoding} request body: truncated data")
    if decompressor.unused_data:
        # a second member or trailing bytes: refused rather than silently dropped (one member per body)
        raise InvalidArgumentError(
            f"failed to decompress the {encoding} request body: {len(decompressor.unused_data)} bytes of data "
            f"after the end of the {encoding} stream"
        )
    return out


def select_response_encoding(accept_encoding: Optional[str]) -> str:
    """Pick identity/gzip/deflate from ``Accept-Encoding`` (q-values; highest wins, ties go to the first)."""
    if not accept_encoding:
        return "identity"
    best, best_q = "identity", -1.0
    for item in accept_encoding.split(","):
        token, _, rest = item.partition(";")
        token = token.strip().lower()
        if token not in SUPPORTED_REQUEST_ENCODINGS:
            continue
        q = 1.0
        rest = rest.strip()
        if rest.startswith("q="):
            try:
                q = float(rest[2:])
            except ValueError:
                q = 0.0
        if q > best_q and q > 0:
            best, best_q = token, q
    return best


def _compress(chunks: Iterable[Any], encoding: str) -> bytes:
    compressor = zlib.compressobj(_COMPRESS_LEVEL, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    parts = [compressor.compress(chunk) for chunk in chunks]
    parts.append(compressor.flush())
    return b"".join(parts)
