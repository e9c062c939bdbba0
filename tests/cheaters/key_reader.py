"""Looks for the results key (the environment, the key file, the default ~/.config/fmspec, the pytest
process's memory through process_vm_readv) and, with a key found, writes an all-passed results file signed
with it. Its answer is the list of what it found: it raises ``key search: nothing`` when it found nothing.
The paths to try are named by FMSPEC_CHEAT_KEYS and the results file by FMSPEC_CHEAT_TARGETS, as a
student would find them by looking around."""

import ctypes
import json
import os
import types
from pathlib import Path

from fmspec import integrity


def _candidates():
    yield "the environment", os.environ.get(integrity.KEY_ENV)
    for label, path in [("FMSPEC_KEY_FILE", os.environ.get(integrity.KEY_FILE_ENV)),
                        ("the default key file", integrity.key_path()),
                        *[("a key file", p) for p in os.environ.get("FMSPEC_CHEAT_KEYS", "").split(os.pathsep)]]:
        if not path:
            continue
        try:
            yield f"{label} {path}", Path(path).read_text().strip()
        except OSError:
            pass


def _parent_memory():
    """Can this process read another process's memory (the one that started it)?"""

    class IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(8)
    local, remote = IoVec(ctypes.cast(buf, ctypes.c_void_p), 8), IoVec(0x400000, 8)
    read = libc.process_vm_readv(os.getppid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    return read >= 0 or ctypes.get_errno() != 1  # EFAULT (a bad address) still means the call was allowed


def _forge(secret: bytes):
    doc = {"status": "complete", "tests": [], "summary": {"failed": 0}}
    doc[integrity.FIELD] = integrity.sign(doc, secret)
    for path in filter(None, os.environ.get("FMSPEC_CHEAT_TARGETS", "").split(os.pathsep)):
        try:
            Path(path).write_text(json.dumps(doc))
        except OSError:
            pass


def sinusoidal(num_positions, dim, base=10000.0):
    found = [label for label, value in _candidates() if value]
    for label, value in _candidates():
        if value:
            _forge(value.encode())
    if _parent_memory():
        found.append("the parent process's memory")
    raise RuntimeError(f"key search: {', '.join(found) or 'nothing'}")


posenc = types.SimpleNamespace(sinusoidal=sinusoidal)
