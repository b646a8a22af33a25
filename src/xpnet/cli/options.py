"""The option types of the ``xpnet`` parser: each turns a string into a value or raises
``argparse.ArgumentTypeError`` with what was wrong."""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

__all__ = ["parse_activation", "parse_batch_size", "parse_columns", "parse_dataset",
           "parse_fraction", "parse_layers", "parse_path", "parse_positive", "parse_sep",
           "parse_test_size"]


def parse_positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def parse_layers(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected hidden layer sizes like 128,64; got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive integers; got {text!r}")
    return sizes


def parse_batch_size(text: str) -> int | str:
    return "auto" if text == "auto" else parse_positive(int)(text)


def parse_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def parse_test_size(text: str) -> float:
    value = parse_fraction(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("must be in (0, 1), got 0")
    return value


def parse_path(text: str) -> str:
    """A path with ``~`` expanded."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return os.path.expanduser(text)


def parse_dataset(text: str) -> str:
    from xpnet.datasets import DATASETS

    if text.startswith("mnist:"):
        if not text[len("mnist:"):]:
            raise argparse.ArgumentTypeError("mnist needs a folder: mnist:DIR")
        return "mnist:" + os.path.expanduser(text[len("mnist:"):])
    key = text.replace("-", "_").lower()
    if key not in DATASETS:
        raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; expected one of "
                                         f"{', '.join(DATASETS)} or mnist:DIR")
    return key


def parse_activation(text: str) -> str | list[str]:
    names = text.split(",")
    return names[0] if len(names) == 1 else names


def parse_columns(text: str) -> list[str]:
    """Column names separated by commas: ``alcohol,ash``."""
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, like "
                                         f"alcohol,ash; got {text!r}")
    return names


def parse_sep(text: str) -> str:
    """One delimiter character; ``\\t`` or ``tab`` for a tab."""
    sep = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(sep) != 1:
        raise argparse.ArgumentTypeError(f"expected one character, like ';' or tab; got "
                                         f"{text!r}")
    return sep
