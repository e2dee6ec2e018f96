"""Dynamic word count: the text decides how many chunks there are (`planflow.map`).

`split` cuts a generated text into chunks of at most `chunk_words` words, so the number of
chunks is known only when it has run. `planflow.map` counts each chunk, maps again over those
partial counts (folding case and punctuation: "Plan," and "plan" are one word), and `merge`
reduces them to the most frequent words. The text is generated deterministically from the
seed, so every run gives the same answer.

    planflow run examples/dynamic_wordcount.py -p words=20000 -p chunk_words=1000
    planflow compile examples/dynamic_wordcount.py -o wc.plan && planflow show wc.plan
    planflow simulate wc.plan --width count-0=200 --width fold-0=200
"""

import random
from collections import Counter

import planflow
from planflow import task, workflow

WORDS = ["plan", "flow", "task", "graph", "worker", "redis", "cost", "time", "memory", "path"]
FORMS = ["{}", "{}", "{},", "{}.", "{}", "{}!"]


@task
def generate(n_words: int, seed: int) -> str:
    """`n_words` words, some capitalised, some with punctuation."""
    rng = random.Random(seed)
    words = (rng.choice(FORMS).format(rng.choice(WORDS)) for _ in range(n_words))
    return " ".join(w.capitalize() if rng.random() < 0.2 else w for w in words)


@task
def split(text: str, chunk_words: int) -> list[str]:
    """Chunks of at most `chunk_words` words: as many as the text needs (none if empty)."""
    words = text.split()
    return [" ".join(words[i : i + chunk_words]) for i in range(0, len(words), chunk_words)]


@task
def count(chunk: str) -> dict[str, int]:
    """Occurrences of each token of one chunk, as written."""
    return dict(Counter(chunk.split()))


@task
def fold(counts: dict[str, int]) -> dict[str, int]:
    """One partial count with case and punctuation folded."""
    folded: Counter[str] = Counter()
    for token, n in counts.items():
        folded[token.strip(",.!").lower()] += n
    return dict(folded)


@task
def merge(partials: list[dict[str, int]], top: int) -> list[tuple[str, int]]:
    """The `top` most frequent words over every partial count (ties by word)."""
    total: Counter[str] = Counter()
    for p in partials:
        total.update(p)
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


@workflow
def dynamic_wordcount(words: int = 20000, chunk_words: int = 2500, top: int = 5, seed: int = 7):
    chunks = split(generate(words, seed), chunk_words)
    counts = planflow.map(count, chunks, expected_width=8)
    folded = planflow.map(fold, counts)  # a map over a map's result
    return merge(folded, top)
