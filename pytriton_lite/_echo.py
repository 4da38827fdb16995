"""Client text in error messages, bounded and always encodable.

Error messages name what the client sent (a model, a tensor, a parameter); a hostile client controls that
text. Every such echo goes through ``echo`` (one string) or ``echo_names`` (a list), so an error stays small
(gRPC carries it in trailing metadata, which clients cap at 16 KiB) and always encodes as UTF-8 (a lone
surrogate from JSON ``"\\ud800"`` is shown escaped instead of breaking the error's own encoding).
``check_utf8`` refuses such text where it is decoded, before a model sees it.

Used by ``protocol`` and ``core`` alike, hence a top-level private module.
"""

from __future__ import annotations

from typing import Iterable, List

from pytriton_lite.exceptions import InvalidArgumentError

__all__ = ["MAX_ECHO_CHARS", "MAX_ECHO_NAMES", "check_utf8", "echo", "echo_names"]

MAX_ECHO_CHARS = 200  # characters of one client string shown in an error message
MAX_ECHO_NAMES = 10  # names of a client list shown in an error message


def echo(text: object, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` as shown in an error message: at most ``limit`` characters (then the count left out)."""
    value = text if isinstance(text, str) else str(text)
    if len(value) > limit:
        value = f"{value[:limit]}... ({len(value) - limit} more characters)"
    if not value.isascii():
        # lone surrogates would make the error itself unencodable
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def echo_names(names: Iterable[object], limit: int = MAX_ECHO_NAMES) -> str:
    """``['a','b',...]`` of the first ``limit`` names (each bounded by ``echo``), then ``and N more``."""
    shown: List[str] = []
    rest = 0
    for name in names:
        if len(shown) < limit:
            shown.append(f"'{echo(name)}'")
        else:
            rest += 1
    listed = "[" + ",".join(shown) + "]"
    return f"{listed} and {rest} more" if rest else listed


def check_utf8(value: str, what: str, model: str) -> str:
    """``value`` if it encodes as UTF-8; else a client error naming ``what`` (a lone surrogate, say)."""
    if value.isascii():  # the common case, without an encoded copy
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"{what} for model '{echo(model)}' is not valid UTF-8: {exc.reason} at position {exc.start}"
        ) from None
    return value
