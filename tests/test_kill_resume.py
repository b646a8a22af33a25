"""Real SIGKILLs to training and saving processes: files survive, resuming is bit for bit."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xpnet.io.container import load, save

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork, SIGKILL and /proc")

MAX_ITER = 30


class Server:
    """tests/_train_worker.py: forks a process per run (xpnet imported once) and reaps it."""

    def __init__(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name(
            "_train_worker.py"))], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=env)
        self.children: set[int] = set()

    def _ask(self, *words: str) -> str:
        self.proc.stdin.write(json.dumps(words) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, f"the fork server died (exit {self.proc.poll()})"
        return answer.split()[1]

    def start(self, *words: str) -> int:
        pid = int(self._ask(*words))
        self.children.add(pid)
        return pid

    def wait(self, pid: int) -> int:
        status = int(self._ask("wait", str(pid)))
        self.children.discard(pid)
        return status

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        assert self.wait(pid) == -signal.SIGKILL

    def close(self) -> None:
        for pid in list(self.children):  # a failed test may leave a child running
            os.kill(pid, signal.SIGKILL)
            self.wait(pid)
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


def _running(pid: int) -> bool:
    """A child of the server that has not exited (an unreaped zombie counts as exited; until
    the server reaps it, its pid cannot be reused, so killing by pid is safe)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.close()


def _temps(directory: Path) -> list[str]:
    return [p for p in os.listdir(directory) if p.endswith(".tmp")]


def test_sigkill_during_repeated_saves_never_breaks_the_file(server, tmp_path):
    """A process saves 4 MiB files in a loop (arrays filled with i, meta {"i": i}); the test
    reads the file while it is being replaced, then SIGKILLs the writer at a random moment. The
    file always loads and holds one whole save: never a mix of two, never truncated."""
    path = tmp_path / "loop.xpnet"
    rng = random.Random(20240605)
    kills_mid_write = reads = 0
    for _ in range(6):
        pid = server.start("save-loop", str(path), "4")
        deadline = time.monotonic() + rng.uniform(0.02, 0.2)
        while time.monotonic() < deadline or not path.exists():  # readers see old or new, whole
            if path.exists():
                arrays, meta = load(path)
                assert np.all(arrays["a"] == meta["i"]) and np.all(arrays["b"] == -meta["i"])
                reads += 1
        server.kill(pid)
        kills_mid_write += bool(_temps(tmp_path))  # a temporary left: killed inside save()
        arrays, meta = load(path)
        assert meta["i"] >= 1 and arrays["a"].size == 4 * 2 ** 20 // 16
        assert np.all(arrays["a"] == meta["i"]) and np.all(arrays["b"] == -meta["i"])
    assert reads > 0
    assert kills_mid_write >= 1  # the kills really did land inside writes
    save(path, {"a": np.zeros(1), "b": np.zeros(1)}, {"i": 0})
    assert _temps(tmp_path) == []  # the killed writers' temporaries were cleaned up
    assert load(path)[1]["i"] == 0


def _checkpoint_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)  # every save os.replace-s a new file in: new inode and mtime
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def test_sigkill_at_random_moments_then_resume_is_bit_for_bit(server, tmp_path):
    """Train (float64, Adam, dropout, shuffling, early stopping: parameters, optimizer moments,
    RNG, best weights, validation split and history all live in the checkpoint), SIGKILL the
    process at random moments, resume each time, and finish: the result equals, bit for bit,
    an uninterrupted run without any checkpointing."""
    ref_out, out, ckpt = tmp_path / "ref.xpnet", tmp_path / "out.xpnet", tmp_path / "ckpt.xpnet"
    train = ("train", str(ckpt), str(out), str(MAX_ITER), "--resume")
    reference = server.start("train", "-", str(ref_out), str(MAX_ITER))  # runs alongside
    rng = random.Random(5)
    # a kill right at the start, most likely before the first checkpoint (then resume=True
    # starts afresh); whatever was written must load
    server.kill(server.start(*train))
    if ckpt.exists():
        load(ckpt)
    epochs, history = [0], []
    for _ in range(4):
        pid = server.start(*train)
        seen = [_checkpoint_id(ckpt)]
        stamps = [time.monotonic()]
        while len(seen) < 1 + rng.randint(1, 2):  # this process writes 1 or 2 checkpoints,
            assert _running(pid), "the training process died"
            if _checkpoint_id(ckpt) != seen[-1]:
                seen.append(_checkpoint_id(ckpt))
                stamps.append(time.monotonic())
            time.sleep(0.0005)
        epoch_s = stamps[-1] - stamps[-2]  # then dies at a random moment of the next epoch
        time.sleep(rng.uniform(0.0, 1.0) * min(epoch_s, 0.2))  # (mid-batch or mid-save)
        assert _running(pid), "the run finished before the kill; raise MAX_ITER"
        server.kill(pid)
        arrays, meta = load(ckpt)  # never broken, never missing
        n_iter = meta["progress"]["n_iter"]
        assert epochs[-1] < n_iter < MAX_ITER  # progress, never lost
        assert len(meta["progress"]["loss_curve"]) == n_iter
        # it resumed rather than restarted: the earlier epochs keep their recorded times
        assert meta["progress"]["history"][:len(history)] == history
        epochs.append(n_iter)
        history = meta["progress"]["history"]
    assert server.wait(server.start(*train)) == 0
    assert server.wait(reference) == 0

    ref, ref_meta = load(ref_out)
    got, got_meta = load(out)
    assert list(got) == list(ref)
    for name in ref:
        assert got[name].dtype == ref[name].dtype
        assert np.array_equal(got[name], ref[name]), name  # bit for bit, not allclose
    assert int(got["n_iter"]) == MAX_ITER
    assert [h["epoch"] for h in got_meta["history"]] == list(range(1, MAX_ITER + 1))
    untimed = [[{k: v for k, v in h.items() if k != "time"} for h in m["history"]]
               for m in (got_meta, ref_meta)]
    assert untimed[0] == untimed[1]  # every epoch's loss, validation loss, score, rate
    assert got_meta["history"][:len(history)] == history  # the last run resumed too
    assert _temps(tmp_path) == []  # the resumed run's saves removed the killed ones' temporaries
