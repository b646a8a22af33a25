"""Fork server for tests/test_kill_resume.py (not a test module: no ``test_`` prefix).

``python _train_worker.py`` imports xpnet (and scikit-learn) once, then reads commands on stdin,
one per line as a JSON list of words, and answers one line on stdout for each:

    save-loop PATH MB                   fork a child that saves for up to 2 minutes (arrays "a"
                                        filled with i, "b" with -i, meta {"i": i}); "pid N"
    train CKPT OUT MAX_ITER [--resume]  fork a child that fits a small float64 MLPClassifier (Adam,
                                        dropout, shuffling, early stopping) with a checkpoint every
                                        epoch (none if CKPT is "-"), then saves coefs_,
                                        intercepts_, loss_curve_, validation_scores_, n_iter_ and
                                        history_ to OUT; answers "pid N"
    wait PID                            reap the child; answers "status S" (its exit code, or
                                        -signal when a signal killed it)

Each child is a real, separate process: the test SIGKILLs it. Forking saves the ~0.5-1.5 s
import per run that a fresh interpreter would cost.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings

import numpy as np

from xpnet import MLPClassifier
from xpnet.io.container import save


def save_loop(path: str, megabytes: float) -> None:
    n = int(megabytes * 2 ** 20 / 8 / 2)
    i = 0
    end = time.monotonic() + 120  # a safety net should the test fail to kill it
    while time.monotonic() < end:
        i += 1
        save(path, {"a": np.full(n, float(i)), "b": np.full(n, -float(i))}, {"i": i})


def data() -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 5-D, 120 examples (scikit-learn layout: rows are examples)."""
    rng = np.random.default_rng(42)
    centers = rng.standard_normal((3, 5)) * 3
    y = np.repeat(np.arange(3), 40)
    X = centers[y] + rng.standard_normal((120, 5))
    return X, y


def train(ckpt: str, out: str, max_iter: int, resume: bool) -> None:
    X, y = data()
    est = MLPClassifier(hidden_layer_sizes=(8, 6), solver="adam", learning_rate_init=0.01,
                        batch_size=16, max_iter=max_iter, shuffle=True, random_state=0,
                        dtype="float64", backend="numpy", tol=0.0, n_iter_no_change=10 ** 6,
                        dropout=0.1, early_stopping=True, validation_fraction=0.2)
    warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter is expected here
    if ckpt == "-":  # the reference: no checkpoints at all
        est.fit(X, y)
    else:
        est.fit(X, y, checkpoint=ckpt, checkpoint_every=1, resume=resume)
    arrays = {f"coef/{i}": c for i, c in enumerate(est.coefs_)}
    arrays.update({f"intercept/{i}": c for i, c in enumerate(est.intercepts_)})
    arrays["loss_curve"] = np.asarray(est.loss_curve_, dtype=np.float64)
    arrays["val_scores"] = np.asarray(est.validation_scores_, dtype=np.float64)
    arrays["n_iter"] = np.asarray(est.n_iter_)
    save(out, arrays, {"history": est.history_})


def _child(words: list[str]) -> None:
    if words[0] == "save-loop":
        save_loop(words[1], float(words[2]))
    else:
        train(words[1], words[2], int(words[3]), "--resume" in words)


def main() -> None:
    for line in sys.stdin:
        words = json.loads(line)
        if words[0] == "wait":
            _, status = os.waitpid(int(words[1]), 0)
            print(f"status {os.waitstatus_to_exitcode(status)}", flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _child(words)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)


if __name__ == "__main__":
    main()
