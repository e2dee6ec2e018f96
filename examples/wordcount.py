"""Word count: split a generated text into chunks (fan-out), count each, merge the counts (fan-in).

The text is generated deterministically in the module, so every run gives the same answer.

    planflow run examples/wordcount.py -p chunks=8 -p top=5
"""

import random
from collections import Counter

from planflow import task, workflow

WORDS = ["plan", "flow", "task", "graph", "worker", "redis", "cost", "time", "memory", "path"]


def make_text(n_words: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


@task
def split(text: str, chunks: int) -> list[str]:
    words = text.split()
    size = -(-len(words) // chunks)
    return [" ".join(words[i:i + size]) for i in range(0, len(words), size)]


@task
def pick(parts: list[str], i: int) -> str:
    return parts[i] if i < len(parts) else ""


@task
def count(chunk: str) -> dict[str, int]:
    return dict(Counter(chunk.split()))


@task
def merge(counts: list[dict[str, int]], top: int) -> list[tuple[str, int]]:
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


@workflow
def wordcount(words: int = 20000, chunks: int = 8, top: int = 5):
    parts = split(make_text(words), chunks)
    counts = [count(pick(parts, i)) for i in range(chunks)]
    return merge(counts, top)
