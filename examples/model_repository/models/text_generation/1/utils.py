"""The toy "language model" of text_generation: a fixed next-word table (a sibling module model.py imports)."""

NEXT_WORD = {
    "once": "upon",
    "upon": "a",
    "a": "time",
    "time": "there",
    "there": "was",
    "was": "a",
}


def generate(prompt: str, max_new_words: int) -> str:
    """Continue ``prompt`` with up to ``max_new_words`` words, each the table's successor of the previous one."""
    words = prompt.split()
    for _ in range(max_new_words):
        nxt = NEXT_WORD.get(words[-1].lower() if words else "once", "...")
        words.append(nxt)
        if nxt == "...":
            break
    return " ".join(words)
