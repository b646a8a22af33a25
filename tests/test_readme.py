"""Every command and code block of README.md runs as written, after the README's own set-up.

The blocks are taken from README.md in order. A ``bash`` or ``python`` block runs (all of them
in one temporary directory, so a later block sees the files an earlier one wrote; ``.venv``
there is the environment running these tests and ``examples/`` the repository's); a block
that cannot run here (it needs the network, a GPU, minutes of measuring) is preceded by
``<!-- not run by tests/test_readme.py: the reason -->`` and every other block must run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"<!-- not run by tests/test_readme\.py: (.+?) -->")
FENCE = re.compile(r"^```(\w*)\s*$")


def blocks() -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, reason it is not run or None) for each fenced block."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        skip = SKIP.search(before)
        out.append((start + 1, lang, "\n".join(lines[start + 1:j]),
                    skip.group(1) if skip else None))
        i = j + 1
    return out


def test_every_block_runs_or_says_why_not():
    found = blocks()
    assert len(found) >= 8
    for line, lang, _, reason in found:
        if reason is None:
            assert lang in ("bash", "python"), (
                f"README.md line {line}: a ```{lang} block must run (bash or python) or be "
                f"marked <!-- not run by tests/test_readme.py: why -->")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    (d / ".venv").symlink_to(Path(sys.prefix))  # the virtual environment running the tests
    (d / "examples").symlink_to(ROOT / "examples")
    return d


RUN = [b for b in blocks() if b[3] is None]


@pytest.mark.parametrize("line,lang,code", [b[:3] for b in RUN],
                         ids=[f"line{b[0]}-{b[1]}" for b in RUN])
def test_block_runs(workdir, line, lang, code):
    env = dict(os.environ, MPLBACKEND="Agg",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if lang == "bash":
        cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        cmd = [sys.executable, "-c", code]
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (f"README.md line {line} ({lang}) failed with status "
                                  f"{done.returncode}:\n{done.stdout[-2000:]}\n"
                                  f"{done.stderr[-3000:]}")
