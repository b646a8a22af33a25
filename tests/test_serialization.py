"""Model files: round trips, and every damaged or hostile file gives ModelFileError, never code."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from xpnet.io.container import FORMAT, FORMAT_VERSION, ModelFileError, load, save

LAYER_DIMS = [4, 3, 2]


def _model_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"W[1]": rng.standard_normal((3, 4)), "b[1]": rng.standard_normal((3, 1)),
            "W[2]": rng.standard_normal((2, 3)), "b[2]": rng.standard_normal((2, 1)),
            "opt/adam/0": rng.standard_normal((3, 4)).astype(np.float32),
            "rng/state": np.array([1, 2, 3], dtype=np.uint64)}


def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write_members(path, members: dict[str, bytes], manifest: bool = True,
                   compression: int = zipfile.ZIP_STORED) -> None:
    """A zip of ``members``; with ``manifest``, a freshly computed MANIFEST.sha256 (valid hashes),
    so that what is tested is the check behind the checksum, not the checksum itself."""
    members = {k: v for k, v in members.items() if not (manifest and k == "MANIFEST.sha256")}
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if manifest:
            zf.writestr("MANIFEST.sha256", "".join(
                f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in members.items()))


def _npy(a: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


def _fresh(directory, data: bytes):
    """A new file each time: rewriting one file in place makes ext4 flush it (auto_da_alloc)."""
    path = directory / f"v{_fresh.count}.xpnet"
    _fresh.count += 1
    path.write_bytes(data)
    return path


_fresh.count = 0


def _temps(directory) -> list[str]:
    return [p for p in os.listdir(directory) if p.endswith(".tmp")]


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.xpnet"
    save(path, _model_arrays(), {"layer_dims": LAYER_DIMS, "activations": ["relu", "softmax"]})
    return path


# ------------------------------------------------------------------------------- round trips

def test_round_trip_dtypes_names_and_meta(tmp_path):
    arrays = {
        "W[1]": np.arange(12, dtype=np.float64).reshape(3, 4) / 7,
        "b[1]": np.full((3, 1), -0.0),
        "f32/[x]": np.array([[1.5, np.inf], [-np.inf, np.nan]], dtype=np.float32),
        "f16": np.array([0.1], dtype=np.float16),
        "int8": np.array([-128, 0, 127], dtype=np.int8),
        "int64": np.array([-(2 ** 63), 2 ** 63 - 1], dtype=np.int64),
        "uint64/a[0]/b]": np.array([2 ** 64 - 1], dtype=np.uint64),
        "bool": np.array([[True, False, True]]),
        "scalar": np.array(3.25),
        "empty": np.zeros((0, 5), dtype=np.float32),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "big-endian": np.array([1.0, 2.0], dtype=">f8"),
        "é ünïcode": np.array([1], dtype=np.int16),
    }
    meta = {"layer_dims": [4, 3], "history": [{"epoch": 1, "loss": 0.5, "val_loss": None}],
            "best_loss": float("inf"), "classes": ["a", "b"], "n": np.int64(7), "t": (1, 2)}
    for p in (tmp_path / "m.xpnet", str(tmp_path / "m2.xpnet")):  # os.PathLike and str
        save(p, arrays, meta)
        got, got_meta = load(p)
        assert list(got) == list(arrays)
        for name, a in arrays.items():
            assert got[name].dtype == a.dtype, name
            assert got[name].shape == a.shape, name
            np.testing.assert_array_equal(got[name], a, strict=True)
        assert got_meta == {"layer_dims": [4, 3], "history": meta["history"],
                            "best_loss": float("inf"), "classes": ["a", "b"], "n": 7,
                            "t": [1, 2], "format": FORMAT, "format_version": FORMAT_VERSION}
    assert (tmp_path / "m.xpnet").read_bytes() == pathlib.Path(tmp_path / "m2.xpnet").read_bytes()


def test_saved_bytes_are_deterministic_and_loaded_meta_resaves(tmp_path, model_file):
    arrays, meta = load(model_file)
    save(tmp_path / "again.xpnet", arrays, meta)  # meta from load carries format keys: accepted
    assert (tmp_path / "again.xpnet").read_bytes() == model_file.read_bytes()


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.xpnet"
    with pytest.raises(FileNotFoundError, match="nope.xpnet"):
        load(path)


# ------------------------------------------------------------------- damaged files

def test_every_truncation_is_detected(model_file):
    data = model_file.read_bytes()
    assert len(data) > 1000
    for n in range(len(data)):  # every length from the empty file to one byte short
        cut = _fresh(model_file.parent, data[:n])
        with pytest.raises(ModelFileError, match=cut.name):
            load(cut)
        cut.unlink()


@pytest.mark.parametrize("mask", [0xFF, 0x01])
def test_every_flipped_byte_is_detected_or_harmless(model_file, mask):
    """A flip anywhere raises ModelFileError, or (zip fields that hold no content, e.g. the
    timestamps) loads exactly the original arrays and meta: never different data, never a raw
    zipfile/numpy/json exception."""
    data = model_file.read_bytes()
    arrays, meta = load(model_file)
    with zipfile.ZipFile(model_file) as zf:  # where each member's bytes lie in the file
        starts = [zi.header_offset + 30 + len(zi.filename.encode()) + len(zi.extra)
                  for zi in zf.infolist()]
        payload = {i for zi, s in zip(zf.infolist(), starts) for i in range(s, s + zi.file_size)}
    detected = harmless = 0
    for i in range(len(data)):
        bad = _fresh(model_file.parent, data[:i] + bytes([data[i] ^ mask]) + data[i + 1:])
        try:
            got, got_meta = load(bad)
        except ModelFileError:
            detected += 1
            continue
        finally:
            bad.unlink()
        assert got_meta == meta, i
        assert list(got) == list(arrays), i
        for name in arrays:
            np.testing.assert_array_equal(got[name], arrays[name], strict=True)
        assert i not in payload, f"flip at byte {i}, inside a member, went unnoticed"
        harmless += 1
    assert detected + harmless == len(data)
    assert len(payload) > 0.7 * len(data) and detected >= len(payload)


def test_content_change_behind_a_valid_zip_crc_fails_the_sha256(model_file, tmp_path):
    members = _members(model_file)
    npy = bytearray(members["arrays/0.npy"])
    npy[-1] ^= 0x01  # last byte of W[1]: a valid .npy with different numbers
    members["arrays/0.npy"] = bytes(npy)
    bad = tmp_path / "tampered.xpnet"
    _write_members(bad, members, manifest=False)  # zipfile writes correct CRC-32s
    with pytest.raises(ModelFileError, match=r"SHA-256 of 'arrays/0.npy' does not match"):
        load(bad)


@pytest.mark.parametrize("change", ["drop_manifest", "extra_member", "drop_array"])
def test_members_must_match_the_manifest(model_file, tmp_path, change):
    members = _members(model_file)
    if change == "drop_manifest":
        del members["MANIFEST.sha256"]
        match = "MANIFEST.sha256 is missing"
    elif change == "extra_member":
        members["evil.py"] = b"import os"
        match = "do not match MANIFEST"
    else:
        del members["arrays/1.npy"]
        match = "do not match MANIFEST"
    bad = tmp_path / "bad.xpnet"
    _write_members(bad, members, manifest=False)
    with pytest.raises(ModelFileError, match=match):
        load(bad)


@pytest.mark.parametrize("content", [b"", b"hello, I am a text file\n", bytes(range(256)) * 8,
                                     b"PK\x05\x06" + bytes(18)])  # the last: an empty zip
def test_not_a_model_file(tmp_path, content):
    path = tmp_path / "junk.xpnet"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="junk.xpnet"):
        load(path)


def test_numpy_npz_is_not_a_model_file(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, W=np.ones(3))
    with pytest.raises(ModelFileError, match=r"not an xpnet model file \(no meta.json\)"):
        load(path)


def test_missing_meta(model_file, tmp_path):
    members = _members(model_file)
    del members["meta.json"]
    bad = tmp_path / "nometa.xpnet"
    _write_members(bad, members)
    with pytest.raises(ModelFileError, match=r"no meta.json"):
        load(bad)


@pytest.mark.parametrize("meta, match", [
    ({"format": FORMAT, "format_version": 2}, r"has format version 2; this xpnet \(.+\) reads "
                                              r"'xpnet-model' version 1: upgrade xpnet"),
    ({"format": FORMAT, "format_version": 0}, r"has format version 0; .* re-save it"),
    ({"format": FORMAT, "format_version": "1"}, r"has format version '1'"),
    ({"format": FORMAT}, r"has format version None"),
    ({"format": "keras"}, r"not an xpnet model file \(meta.json format is 'keras'"),
    ([1, 2], r"not an xpnet model file \(meta.json format is 'list'"),
])
def test_wrong_format_or_version(model_file, tmp_path, meta, match):
    members = _members(model_file)
    members["meta.json"] = json.dumps(meta).encode()
    bad = tmp_path / "version.xpnet"
    _write_members(bad, members)
    with pytest.raises(ModelFileError, match=match):
        load(bad)


def test_meta_not_json(model_file, tmp_path):
    members = _members(model_file)
    members["meta.json"] = b"{'format': 'xpnet-model'}"
    bad = tmp_path / "notjson.xpnet"
    _write_members(bad, members)
    with pytest.raises(ModelFileError, match=r"meta.json is not valid JSON"):
        load(bad)


def test_compressed_members_are_refused(model_file, tmp_path):
    bad = tmp_path / "deflated.xpnet"
    _write_members(bad, _members(model_file), compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelFileError, match="compressed or encrypted"):
        load(bad)


# ------------------------------------------------------------------------- hostile files

class _Payload:
    """Unpickling this calls os.mkdir(marker): proof of code execution if the marker appears."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickled_object_array_is_refused_and_never_executed(model_file, tmp_path):
    marker = tmp_path / "PWNED"
    evil_npy = _npy(np.array([_Payload(str(marker))], dtype=object), allow_pickle=True)
    members = _members(model_file)
    members["arrays/0.npy"] = evil_npy
    index = json.loads(members["arrays.json"])
    index[0].update(dtype="|O", shape=[1])
    members["arrays.json"] = json.dumps(index).encode()
    bad = tmp_path / "evil.xpnet"
    _write_members(bad, members)  # valid checksums: only the dtype check stands in the way
    with pytest.raises(ModelFileError, match=r"array 'W\[1\]' has dtype object; .* never loads"):
        load(bad)
    assert not marker.exists()
    # Control: the payload is live — numpy with allow_pickle=True runs it.
    np.load(io.BytesIO(evil_npy), allow_pickle=True)
    assert marker.is_dir()


def test_a_whole_pickle_file_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ModelFileError, match="not a readable zip archive"):
        load(path)
    assert not marker.exists()


@pytest.mark.parametrize("dtype", [np.dtype(object), np.dtype([("a", "O"), ("b", "<f8")]),
                                   np.dtype([("a", "<f8")]), np.dtype("<U3"),
                                   np.dtype("<c16"), np.dtype("<M8[s]")])
def test_npy_header_with_a_forbidden_dtype(model_file, tmp_path, dtype):
    """The header alone is refused: nothing after it (where a pickle would sit) is read."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                  "fortran_order": False, "shape": (1,)})
    members = _members(model_file)
    members["arrays/0.npy"] = header.getvalue() + b"\x80\x04garbage"
    index = json.loads(members["arrays.json"])
    index[0].update(dtype=dtype.str, shape=[1])
    members["arrays.json"] = json.dumps(index).encode()
    bad = tmp_path / "dtype.xpnet"
    _write_members(bad, members)
    with pytest.raises(ModelFileError, match=r"array 'W\[1\]' has dtype .*bool/int/uint/float"):
        load(bad)


def test_header_shape_larger_than_the_data_is_refused_before_allocating(model_file, tmp_path):
    members = _members(model_file)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10 ** 6, 10 ** 6)})
    members["arrays/0.npy"] = header.getvalue() + bytes(96)
    index = json.loads(members["arrays.json"])
    index[0]["shape"] = [10 ** 6, 10 ** 6]
    members["arrays.json"] = json.dumps(index).encode()
    bad = tmp_path / "huge.xpnet"
    _write_members(bad, members)
    with pytest.raises(ModelFileError, match=r"holds 96 data bytes; shape \[1000000, 1000000\]"):
        load(bad)


@pytest.mark.parametrize("change, match", [
    (lambda index: index[0].update(dtype="<f4"),
     r"array 'W\[1\]' is <f8 \[3, 4\] but arrays.json says <f4 \[3, 4\]"),
    (lambda index: index[0].update(file="../../etc/passwd"), "malformed arrays.json entry 0"),
    (lambda index: index[0].update(shape=[3, -4]), "malformed arrays.json entry 0"),
    (lambda index: index[0].update(shape=[3, True]), "malformed arrays.json entry 0"),
    (lambda index: index[0].update(extra=1), "malformed arrays.json entry 0"),
    (lambda index: index[1].update(name="W[1]"), r"array 'W\[1\]' appears twice"),
    (lambda index: index[0].update(name=""), "non-empty printable"),
    (lambda index: index.pop(), r"members \['arrays/5.npy'\] are not accounted for"),
    (lambda index: index.append(dict(index[0], name="extra", file="arrays/6.npy")),
     r"array 'extra' member arrays/6.npy is missing"),
])
def test_inconsistent_index(model_file, tmp_path, change, match):
    members = _members(model_file)
    index = json.loads(members["arrays.json"])
    change(index)
    members["arrays.json"] = json.dumps(index).encode()
    bad = tmp_path / "index.xpnet"
    _write_members(bad, members)
    with pytest.raises(ModelFileError, match=match):
        load(bad)


# ------------------------------------------------------------------------- architecture

@pytest.mark.parametrize("layer_dims, match", [
    ([4, 3, 3], r"layer_dims \[4, 3, 3\] needs W\[2\] of shape \(3, 3\) .* got \(2, 3\)"),
    ([5, 3, 2], r"needs W\[1\] of shape \(3, 5\) .* got \(3, 4\)"),
    ([4, 3], r"array W\[2\] but layer_dims \[4, 3\] has L = 1"),
    ([4, 3, 2, 2], r"array W\[3\] is missing"),
    ([4, 0, 2], r"layer_dims must be a list \[n0, ..., nL\] of positive integers"),
    ("4-3-2", r"layer_dims must be a list"),
])
def test_architecture_mismatch_on_load(model_file, tmp_path, layer_dims, match):
    members = _members(model_file)
    meta = json.loads(members["meta.json"])
    meta["layer_dims"] = layer_dims
    members["meta.json"] = json.dumps(meta).encode()
    bad = tmp_path / "arch.xpnet"
    _write_members(bad, members)
    with pytest.raises(ModelFileError, match="architecture mismatch|missing|layer_dims must"):
        load(bad)
    with pytest.raises(ModelFileError, match=match):
        load(bad)


def test_architecture_b_shape_and_dtype_on_load(model_file, tmp_path):
    arrays, meta = load(model_file)
    for key, value, match in [("b[2]", np.zeros((1, 2)), r"b\[2\] of shape \(2, 1\)"),
                              ("W[1]", np.zeros((3, 4), dtype=np.int64), r"\(floating\)")]:
        members = _members(model_file)
        members["arrays/" + str(list(arrays).index(key)) + ".npy"] = _npy(value)
        index = json.loads(members["arrays.json"])
        index[list(arrays).index(key)].update(dtype=value.dtype.str, shape=list(value.shape))
        members["arrays.json"] = json.dumps(index).encode()
        bad = tmp_path / "b.xpnet"
        _write_members(bad, members)
        with pytest.raises(ModelFileError, match=match):
            load(bad)


# ----------------------------------------------------------- bad input to save; atomicity

class _Unconvertible:
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("device lost while copying to the host")


@pytest.mark.parametrize("arrays, meta, error, match", [
    ({"W[1]": _Unconvertible()}, {}, RuntimeError, "device lost"),
    ({"": np.ones(2)}, {}, ValueError, "non-empty printable"),
    ({"a\nb": np.ones(2)}, {}, ValueError, "non-empty printable"),
    ({3: np.ones(2)}, {}, ValueError, "non-empty printable"),
    ({"x": np.array([object()])}, {}, TypeError, "has dtype object"),
    ({"x": np.array(["abc"])}, {}, TypeError, "has dtype <U3"),
    ({"x": np.ones(2, dtype=complex)}, {}, TypeError, "has dtype complex128"),
    ({"x": np.ones(2)}, {"s": {1, 2}}, TypeError, "meta must be JSON-serialisable; got set"),
    ({"x": np.ones(2)}, {"format_version": 7}, ValueError, r"meta\['format_version'\] is reserved"),
    ({"x": np.ones(2)}, [("a", 1)], TypeError, "meta must be a mapping"),
    ({"W[1]": np.ones((3, 4)), "b[1]": np.ones((3, 1))}, {"layer_dims": [4, 2]}, ValueError,
     r"cannot save: architecture mismatch: layer_dims \[4, 2\] needs W\[1\] of shape \(2, 4\)"),
])
def test_bad_save_leaves_the_old_file_and_no_temporaries(model_file, arrays, meta, error, match):
    before = model_file.read_bytes()
    with pytest.raises(error, match=match):
        save(model_file, arrays, meta)
    assert model_file.read_bytes() == before
    assert _temps(model_file.parent) == []


def test_failed_replace_removes_the_temporary(tmp_path):
    target = tmp_path / "a_directory"
    target.mkdir()  # os.replace(file, directory) fails after the whole file was written
    with pytest.raises(IsADirectoryError):
        save(target, {"x": np.ones(3)}, {})
    assert target.is_dir() and list(target.iterdir()) == []
    assert _temps(tmp_path) == []


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        save(tmp_path / "no_such_dir" / "m.xpnet", {"x": np.ones(3)}, {})


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions that apply (root ignores them)")
def test_read_only_directory(model_file):
    before = model_file.read_bytes()
    model_file.parent.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            save(model_file, _model_arrays(), {})
    finally:
        model_file.parent.chmod(0o700)
    assert model_file.read_bytes() == before
    assert _temps(model_file.parent) == []


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE / SIGXFSZ as on Linux")
def test_disk_full_mid_write_keeps_the_old_file(model_file):
    """A real write failure in the middle of the data (file size limit: EFBIG), in a subprocess."""
    before = model_file.read_bytes()
    code = textwrap.dedent(f"""
        import errno, resource, signal, sys
        import numpy as np
        from xpnet.io.container import save
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        try:
            save({str(model_file)!r}, {{"W[1]": np.ones((512, 512))}}, {{}})
        except OSError as e:
            sys.exit(0 if e.errno == errno.EFBIG else 2)
        sys.exit(1)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert model_file.read_bytes() == before
    assert _temps(model_file.parent) == []


@pytest.mark.skipif(os.name != "posix", reason="process ids as on POSIX")
def test_temporaries_of_dead_processes_are_removed_by_the_next_save(model_file):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    prefix = f".{model_file.name}.{os.uname().nodename}."
    stale = model_file.parent / f"{prefix}{dead.pid}.0badc0de.tmp"
    live = model_file.parent / f"{prefix}{os.getppid()}.0badc0de.tmp"  # a live process
    other = model_file.parent / f".other.xpnet.{os.uname().nodename}.{dead.pid}.0badc0de.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"half a model")
    save(model_file, _model_arrays(), {"layer_dims": LAYER_DIMS})
    assert not stale.exists()
    assert live.exists() and other.exists()
    load(model_file)
