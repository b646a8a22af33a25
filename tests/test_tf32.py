"""tf32: float32 matrix products on TF32 tensor cores, asked for per estimator.

On the CPU the setting changes nothing (there are no tensor cores); what is checked here is
the parameter (validation, model files, the command line) and the process-wide flag that the
torch backend sets inside fit / predict on a CUDA device and restores after. The accuracy on a
GPU is in tests/test_gpu_estimators.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import blobs, usable

import xpnet
from xpnet import MLPClassifier
from xpnet.cli import main


def test_tf32_must_be_a_bool_and_a_bad_value_changes_nothing():
    X, y = blobs()
    est = MLPClassifier((4,), max_iter=2, random_state=0, tf32="yes")
    with pytest.raises(ValueError, match=r"tf32 must be True or False; got 'yes'"):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_")
    assert MLPClassifier().get_params()["tf32"] is False


def test_tf32_changes_nothing_on_the_cpu():
    X, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MLPClassifier((6,), max_iter=3, random_state=0).fit(X, y)
        b = MLPClassifier((6,), max_iter=3, random_state=0, tf32=True).fit(X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)


def test_tf32_is_kept_in_model_files(tmp_path):
    X, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier((4,), max_iter=2, random_state=0, tf32=True).fit(X, y)
    est.save(tmp_path / "m.xpnet")
    assert xpnet.load(tmp_path / "m.xpnet").get_params()["tf32"] is True


@pytest.mark.skipif(not usable("torch")[0], reason="torch not installed")
@pytest.mark.parametrize("tf32,inside", [(True, "tf32"), (False, "ieee")])
def test_torch_cuda_flag_set_inside_and_restored(tf32, inside):
    """The flag torch's CUDA matrix products read, on a torch Backend whose device is CUDA
    (made directly: the flag is the same object with or without a GPU)."""
    import torch

    from xpnet.backends.torch import TorchBackend

    flag = torch.backends.cuda.matmul
    before = flag.fp32_precision
    cuda = TorchBackend(torch.device("cuda", 0))
    with cuda.matmul_precision(tf32):
        assert flag.fp32_precision == inside
    assert flag.fp32_precision == before
    with xpnet.get_backend("torch").matmul_precision(tf32):  # the CPU: left alone
        assert flag.fp32_precision == before


@pytest.mark.parametrize("flag,want", [([], False), (["--tf32"], True)])
def test_command_line_tf32(tmp_path, capsys, flag, want):
    model = tmp_path / "m.xpnet"
    assert main(["train", "--dataset", "breast_cancer", "--epochs", "2", "--quiet",
                 "--save", str(model), *flag]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert xpnet.load(model).get_params()["tf32"] is want
