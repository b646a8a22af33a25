"""Model files that never execute code on load: a zip of JSON and ``.npy`` members, checksummed.

Layout of an ``xpnet-model`` file, format version 1 (a zip archive, every member STORED, i.e.
uncompressed, with a fixed 1980-01-01 timestamp, so equal content gives equal bytes)::

    meta.json          UTF-8 JSON object: the caller's meta plus "format": "xpnet-model" and
                       "format_version": 1 (Python's json: NaN/Infinity allowed, tuples -> lists)
    arrays.json        JSON list, one entry per array, in save order:
                       {"name": "W[1]", "file": "arrays/0.npy", "dtype": "<f8", "shape": [3, 4]}
    arrays/<i>.npy     the i-th array, NumPy .npy format (bool, int, uint or float; never object)
    MANIFEST.sha256    last member, ``sha256sum`` format: "<64 hex>  <member>" per other member

``load`` reads ``meta.json`` first (format and version), then checks that the members are exactly
those of the manifest and that every SHA-256 matches, so truncation or any changed byte of any
member gives a :class:`ModelFileError` (a change in zip bookkeeping that holds no content either
fails to parse or loads the very same data); then it reads each ``.npy`` header with
``numpy.lib.format`` (a literal parser), rejects object/structured dtypes and sizes that disagree
with the header, and reads the data with ``allow_pickle=False``. Nothing in the file is ever
unpickled or evaluated. Archives of other shapes (compressed or duplicate members, members the
index does not account for) are refused.

``save`` is atomic: it writes a temporary file in the target's directory, flushes and fsyncs it,
``os.replace``-s it over the target and fsyncs the directory. A crash at any moment leaves the
old file or the new one, never a broken one; a failed call removes its temporary file. Temporary
files left by killed processes (``.<name>.<host>.<pid>.<hex>.tmp``) are removed by the next
successful save to the same path once their process is gone.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import re
import secrets
import socket
import struct
import zipfile
import zlib
from typing import Any, Callable, Mapping

import numpy as np

from xpnet.errors import ModelFileError

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "atomic_write", "load", "save"]

FORMAT = "xpnet-model"
FORMAT_VERSION = 1

_META, _INDEX, _MANIFEST = "meta.json", "arrays.json", "MANIFEST.sha256"
_DATE = (1980, 1, 1, 0, 0, 0)
_KINDS = "biuf"  # bool, signed int, unsigned int, float
_LAYER_NAME = re.compile(r"([Wb])\[(\d+)\]\Z")
_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (\S+)\Z")
# What zipfile/json/numpy raise on a damaged or hand-crafted file (never on a good one).
_PARSE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                 KeyError, IndexError, TypeError, struct.error, zlib.error, NotImplementedError,
                 RuntimeError, UnicodeDecodeError, OverflowError)



# --------------------------------------------------------------------------------------- save

def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or not name.isprintable() or len(name) > 256:
        raise ValueError(f"array names must be non-empty printable strings of at most 256 "
                         f"characters; got {name!r}")
    return name


def _check_array(name: str, value: Any) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in _KINDS or a.dtype.names is not None or a.dtype.subdtype is not None:
        raise TypeError(f"array {name!r} has dtype {a.dtype}; a model file holds only bool, "
                        f"integer and floating-point arrays (convert it, or put it in meta)")
    return a


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic) and obj.dtype.kind in _KINDS:
        return obj.item()
    raise TypeError(f"meta must be JSON-serialisable; got {type(obj).__name__} {obj!r:.60}: "
                    f"put arrays in `arrays` and other values as str/int/float/bool/None/list/dict")


def _encode_meta(meta: Mapping[str, Any]) -> bytes:
    if not isinstance(meta, Mapping) or not all(isinstance(k, str) for k in meta):
        raise TypeError(f"meta must be a mapping with str keys; got {type(meta).__name__}")
    for key, value in (("format", FORMAT), ("format_version", FORMAT_VERSION)):
        if key in meta and meta[key] != value:
            raise ValueError(f"meta[{key!r}] is reserved (save writes {value!r}); got "
                             f"{meta[key]!r}")
    full = {**meta, "format": FORMAT, "format_version": FORMAT_VERSION}
    return json.dumps(full, default=_json_default).encode("utf-8")


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def _write_zip(f: Any, arrays: dict[str, np.ndarray], meta_bytes: bytes) -> None:
    manifest = []
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        def put(member: str, data: bytes) -> None:
            zf.writestr(zipfile.ZipInfo(member, _DATE), data)
            manifest.append(f"{hashlib.sha256(data).hexdigest()}  {member}\n")

        put(_META, meta_bytes)
        index = [{"name": name, "file": f"arrays/{i}.npy", "dtype": a.dtype.str,
                  "shape": list(a.shape)} for i, (name, a) in enumerate(arrays.items())]
        put(_INDEX, json.dumps(index).encode("utf-8"))
        for entry, a in zip(index, arrays.values()):
            put(entry["file"], _npy_bytes(a))
        zf.writestr(zipfile.ZipInfo(_MANIFEST, _DATE), "".join(manifest).encode("ascii"))


def _temp_prefix(name: str) -> str:
    """``.<name>.<host>.``, then ``<pid>.<hex>.tmp``: a name a SIGKILLed save can be traced by."""
    return f".{name[:100]}.{socket.gethostname()[:50]}."


def _fsync_dir(directory: str) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems cannot fsync a directory
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _remove_stale_temps(directory: str, name: str) -> None:
    """Remove temporaries of ``name`` left on this host by processes that no longer exist."""
    prefix = _temp_prefix(name)
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid = entry[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            try:
                os.unlink(os.path.join(directory, entry))
            except OSError:
                pass
        except (OSError, OverflowError):  # alive but not ours, or not a pid at all
            pass


def save(path: str | os.PathLike, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Write ``arrays`` and the JSON object ``meta`` to ``path`` atomically (layout: module doc).

    Raises ValueError/TypeError for a bad name, dtype, meta or architecture (``meta["layer_dims"]``
    against W[l], b[l]) before anything is written; on any failure the file at ``path`` is left
    as it was and no temporary file remains.
    """
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a mapping name -> array; got {type(arrays).__name__}")
    checked = {_check_name(k): _check_array(k, v) for k, v in arrays.items()}
    meta_bytes = _encode_meta(meta)
    problem = _architecture_problem(checked, meta["layer_dims"]) if "layer_dims" in meta else None
    if problem:
        raise ValueError(f"cannot save: {problem}")
    atomic_write(path, lambda f: _write_zip(f, checked, meta_bytes), what="model file")


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *,
                 what: str = "file") -> None:
    """``write(f)`` into a temporary file beside ``path``, flushed and fsynced, then
    ``os.replace``-d over it and the directory fsynced: a crash leaves the old file or the new
    one, never half of one; a failed call removes its temporary file (and a successful one
    those that killed processes left)."""
    target = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"directory of the {what} does not exist",
                                directory)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    tmp = os.path.join(directory,
                       f"{_temp_prefix(name)}{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, flags, 0o666)  # the umask applies, as for any new file
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    _remove_stale_temps(directory, name)


# --------------------------------------------------------------------------------------- load

def _read_json(data: bytes, member: str, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise ModelFileError(f"{where}: {member} is not valid JSON ({e}); the file is corrupt")


def _check_version(meta: Any, where: str) -> dict:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelFileError(f"{where} is not an xpnet model file ({_META} format is {got!r}, "
                             f"expected {FORMAT!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        from xpnet import __version__
        hint = ("upgrade xpnet to read it" if isinstance(version, int) and version > FORMAT_VERSION
                else "re-save it with the xpnet that wrote it")
        raise ModelFileError(f"{where} has format version {version!r}; this xpnet "
                             f"({__version__}) reads {FORMAT!r} version {FORMAT_VERSION}: {hint}")
    return meta


def _verify_manifest(zf: zipfile.ZipFile, where: str) -> dict[str, bytes]:
    """The members' bytes, once every SHA-256 matches ``MANIFEST.sha256``."""
    names = zf.namelist()
    if len(set(names)) != len(names):
        raise ModelFileError(f"{where}: the archive holds duplicate members; it was not written "
                             f"by xpnet")
    if _MANIFEST not in names:
        raise ModelFileError(f"{where}: {_MANIFEST} is missing; the file is truncated or was not "
                             f"written by xpnet")
    listed = {}
    for line in zf.read(_MANIFEST).decode("ascii").splitlines():
        m = _MANIFEST_LINE.match(line)
        if m is None:
            raise ModelFileError(f"{where}: malformed {_MANIFEST} line {line[:80]!r}")
        listed[m.group(2)] = m.group(1)
    members = set(names) - {_MANIFEST}
    if set(listed) != members:
        raise ModelFileError(f"{where}: members {sorted(members)} do not match {_MANIFEST} "
                             f"{sorted(listed)}; the file is corrupt")
    for info in zf.infolist():
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise ModelFileError(f"{where}: member {info.filename!r} is compressed or encrypted; "
                                 f"xpnet writes only stored members")
    contents = {}
    for member, digest in listed.items():
        contents[member] = zf.read(member)
        if hashlib.sha256(contents[member]).hexdigest() != digest:
            raise ModelFileError(f"{where}: SHA-256 of {member!r} does not match {_MANIFEST}; "
                                 f"the file is corrupt")
    return contents


def _read_npy(data: bytes, entry: dict, where: str) -> np.ndarray:
    name = entry["name"]
    fp = io.BytesIO(data)
    major, _ = np.lib.format.read_magic(fp)
    read_header = {1: np.lib.format.read_array_header_1_0,
                   2: np.lib.format.read_array_header_2_0}.get(major)
    if read_header is None:
        raise ModelFileError(f"{where}: array {name!r} has .npy version {major}; expected 1 or 2")
    shape, fortran, dtype = read_header(fp)  # a literal parser (ast.literal_eval), no eval
    if dtype.hasobject or dtype.kind not in _KINDS or dtype.names or dtype.subdtype:
        raise ModelFileError(f"{where}: array {name!r} has dtype {dtype}; model files hold only "
                             f"bool/int/uint/float arrays (object arrays would need pickle, "
                             f"which xpnet never loads)")
    if dtype.str != entry["dtype"] or list(shape) != entry["shape"]:
        raise ModelFileError(f"{where}: array {name!r} is {dtype.str} {list(shape)} but "
                             f"{_INDEX} says {entry['dtype']} {entry['shape']}")
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - fp.tell() != expected:
        raise ModelFileError(f"{where}: array {name!r} holds {len(data) - fp.tell()} data bytes;"
                             f" shape {list(shape)} of {dtype} needs {expected}")
    fp.seek(0)
    return np.lib.format.read_array(fp, allow_pickle=False)


def _read_arrays(contents: dict[str, bytes], where: str) -> dict[str, np.ndarray]:
    index = _read_json(contents[_INDEX], _INDEX, where)
    if not isinstance(index, list):
        raise ModelFileError(f"{where}: {_INDEX} must be a list; got {type(index).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for i, entry in enumerate(index):
        ok = (isinstance(entry, dict) and set(entry) == {"name", "file", "dtype", "shape"}
              and isinstance(entry["name"], str) and entry["file"] == f"arrays/{i}.npy"
              and isinstance(entry["dtype"], str) and isinstance(entry["shape"], list)
              and all(type(n) is int and n >= 0 for n in entry["shape"]))
        if not ok:
            raise ModelFileError(f"{where}: malformed {_INDEX} entry {i}: {str(entry)[:120]}")
        try:
            name = _check_name(entry["name"])
        except ValueError as e:
            raise ModelFileError(f"{where}: {e}") from None
        if name in arrays:
            raise ModelFileError(f"{where}: array {name!r} appears twice in {_INDEX}")
        if entry["file"] not in contents:
            raise ModelFileError(f"{where}: array {name!r} member {entry['file']} is missing")
        arrays[name] = _read_npy(contents[entry["file"]], entry, where)
    expected = {_META, _INDEX} | {f"arrays/{i}.npy" for i in range(len(index))}
    if set(contents) != expected:
        raise ModelFileError(f"{where}: members {sorted(set(contents) ^ expected)} are "
                             f"not accounted for by {_INDEX}; the file is inconsistent")
    return arrays


def _architecture_problem(arrays: Mapping[str, np.ndarray], dims: Any) -> str | None:
    """W[l] must be (n[l], n[l-1]) and b[l] (n[l], 1), floating, for l = 1..L; nothing beyond L."""
    if (not isinstance(dims, (list, tuple)) or len(dims) < 2
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
                       for n in dims)):
        return f"layer_dims must be a list [n0, ..., nL] of positive integers; got {dims!r}"
    dims, L = [int(n) for n in dims], len(dims) - 1
    for l in range(1, L + 1):
        for key, want in ((f"W[{l}]", (dims[l], dims[l - 1])), (f"b[{l}]", (dims[l], 1))):
            if key not in arrays:
                return f"array {key} is missing; layer_dims {dims} needs W[l], b[l], l = 1..{L}"
            a = arrays[key]
            if a.shape != want or a.dtype.kind != "f":
                return (f"architecture mismatch: layer_dims {dims} needs {key} of shape {want} "
                        f"(floating) but got {a.shape} {a.dtype}")
    for key in arrays:
        m = _LAYER_NAME.match(key)
        if m and not 1 <= int(m.group(2)) <= L:
            return f"architecture mismatch: array {key} but layer_dims {dims} has L = {L} layers"
    return None


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a model file: ``(arrays, meta)``; never unpickles, never evaluates anything.

    Raises FileNotFoundError (with the path) if there is no file, and ModelFileError for a
    truncated, corrupt, foreign, wrong-version or inconsistent one.
    """
    where = f"model file {os.fspath(path)!r}"
    with open(path, "rb") as f:
        try:
            with zipfile.ZipFile(f) as zf:
                if _META not in zf.namelist():
                    raise ModelFileError(f"{where} is not an xpnet model file (no {_META})")
                meta = _check_version(_read_json(zf.read(_META), _META, where), where)
                arrays = _read_arrays(_verify_manifest(zf, where), where)
        except ModelFileError:
            raise
        except zipfile.BadZipFile as e:
            raise ModelFileError(f"{where} is not a readable zip archive ({e}); it is truncated, "
                                 f"corrupt, or not an xpnet model file") from None
        except _PARSE_ERRORS as e:
            raise ModelFileError(f"{where} is corrupt: {type(e).__name__}: {e}") from e
    problem = _architecture_problem(arrays, meta["layer_dims"]) if "layer_dims" in meta else None
    if problem:
        raise ModelFileError(f"{where}: {problem}")
    return arrays, meta
