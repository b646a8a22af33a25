"""Benchmarks of training throughput: ``xpnet bench`` or ``python -m xpnet.bench``.

Every candidate — xpnet on each usable backend, PyTorch eager, scikit-learn's MLPClassifier,
the matrix-product floor, and ``MLPClassifier.fit`` — runs in its own process
(:mod:`xpnet.bench.worker`); :func:`main` collects the results, prints the table, checks the
targets, and writes ``bench.json`` and ``bench.png``.
"""

from xpnet.bench.runner import main

__all__ = ["main"]
