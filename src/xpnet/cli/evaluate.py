"""``xpnet evaluate``: a saved model's metrics on the held-out part of its dataset."""

from __future__ import annotations

import argparse
import time

from xpnet.cli.common import META_KEY, PROG, SPLIT_SEED, UsageError, report, user_errors

__all__ = ["run_evaluate"]


def run_evaluate(args: argparse.Namespace) -> int:
    import xpnet

    from xpnet.io import container as serialization
    from xpnet.datasets import load_dataset, load_file

    try:
        _, meta = serialization.load(args.model)
        recorded = meta.get(META_KEY) or {}
        name = args.dataset or recorded.get("name")
        if name is None:
            raise UsageError(f"{args.model} records no dataset (it was not saved by `xpnet "
                             "train`); give one with --dataset")
        model = xpnet.load(args.model, backend=args.backend, device=args.device)
        dtype = str(getattr(model, "dtype", "float32"))
        dtype = dtype if dtype in ("float32", "float64") else "float32"
        split = dict(test_size=recorded.get("test_size", 0.25),
                     random_state=recorded.get("split_seed", SPLIT_SEED), dtype=dtype)
        if args.dataset is None and recorded.get("source"):  # trained on the user's file
            ds = load_file(recorded["source"], target=recorded.get("target"),
                           task=recorded.get("task"), **split)
        else:
            ds = load_dataset(name, **split)
    except user_errors() as exc:
        raise UsageError(exc) from None
    n_in = getattr(model, "n_features_in_", ds.n_features)
    if n_in != ds.n_features:
        raise UsageError(f"the model expects {n_in} features but {ds.name} has "
                         f"{ds.n_features}; evaluate it on the dataset it was trained on")
    is_classifier = hasattr(model, "classes_")
    if is_classifier != (ds.task == "classification"):
        raise UsageError(f"a {type(model).__name__} cannot be evaluated on {ds.name}, a "
                         f"{ds.task} dataset")
    print(f"{PROG} evaluate: {args.model}")
    print(f"model: {model!r}")
    print(f"dataset: {ds.describe()} (test part)")
    start = time.perf_counter()
    report(model, ds)
    print(f"time: {time.perf_counter() - start:.2f} s")
    return 0
