"""Runs every ``python`` block of docs/streaming.md: each starts its own server on free ports and checks itself."""

from __future__ import annotations

import pathlib
import re
from typing import List

import pytest

DOCS_PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "streaming.md"


def _blocks() -> List[str]:
    return re.findall(r"```python\n(.*?)```", DOCS_PAGE.read_text(encoding="utf-8"), flags=re.S)


def _block_id(block: str) -> str:
    """The page's section above the block, so a failure names where to look."""
    text = DOCS_PAGE.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text[: text.index(block)], flags=re.M)
    return headings[-1] if headings else "intro"


def test_page_has_the_expected_blocks() -> None:
    # One runnable block per topic: generators/@batch, gRPC stream, HTTP SSE, cancellation, async client.
    assert len(_blocks()) == 5


@pytest.mark.timeout(120)
@pytest.mark.parametrize("index", range(len(_blocks())), ids=[_block_id(b) for b in _blocks()])
def test_docs_block_runs(index: int) -> None:
    block = _blocks()[index]
    # A fresh namespace per block: each block must stand alone, as a reader would paste it.
    exec(compile(block, f"{DOCS_PAGE}#block{index + 1}", "exec"), {"__name__": "docs_streaming_example"})
