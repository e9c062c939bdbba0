"""The results file's integrity check: an HMAC-SHA256 keyed by a secret that only the grader holds.

The pytest controller signs the results file each time it writes it; ``fmspec gate``, ``fmspec report``
and ``fmspec grade`` verify it. A file edited after the run (a test's outcome changed, a failure removed,
a summary rewritten) no longer matches its digest and is flagged ``edited``.

The key is, in order: the ``FMSPEC_RESULTS_KEY`` environment variable (any text), else the file that
``FMSPEC_KEY_FILE`` names, else ``$XDG_CONFIG_HOME/fmspec/results-key`` (``~/.config/fmspec/results-key``),
created with 32 random bytes (mode 0600) by the first run that writes a results file. A course that grades
on several machines sets the same ``FMSPEC_RESULTS_KEY`` on each (a CI secret).

What it protects against (docs/trust.md): in isolated mode (``--fmspec-isolate``) the candidate process
sees neither the variable nor the key file, so nothing it does can produce a file that verifies. In
process, candidate code runs as the grader and could read the key: there the digest only shows edits made
after the run by someone without the key.

The digest covers the whole document except its own ``integrity`` field, serialised canonically (sorted
keys, no spaces), so that re-indenting the file keeps it valid and changing any value does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

KEY_ENV = "FMSPEC_RESULTS_KEY"
KEY_FILE_ENV = "FMSPEC_KEY_FILE"
FIELD = "integrity"
ALGORITHM = "hmac-sha256"

# what verify() says of a document
VALID = "valid"  # signed with this key, unchanged since
EDITED = "edited"  # signed with this key, changed since
UNSIGNED = "unsigned"  # no digest at all (an older fmspec, or written without a key)
OTHER_KEY = "other key"  # signed with a key this machine does not hold: cannot be checked here


def key_path() -> Path:
    """The key file: ``FMSPEC_KEY_FILE``, else ``$XDG_CONFIG_HOME/fmspec/results-key``."""
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV]).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "fmspec" / "results-key"


def key(create: bool = False) -> bytes | None:
    """The grader's key (see the module's docstring), or None where there is none and ``create`` is False."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode("utf-8")
    path = key_path()
    try:
        return path.read_bytes().strip() or None
    except FileNotFoundError:
        if not create:
            return None
    except OSError:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_bytes().strip() or None
    except OSError:
        return None  # a read-only home: the file goes unsigned, and says so
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_hex(32).encode("ascii"))
    return path.read_bytes().strip()


def key_id(secret: bytes) -> str:
    """A public name of a key (not the key): tells which key signed a file."""
    return hashlib.sha256(b"fmspec key id\0" + secret).hexdigest()[:12]


def canonical(doc: dict) -> bytes:
    body = {k: v for k, v in doc.items() if k != FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def sign(doc: dict, secret: bytes) -> dict:
    """The ``integrity`` field of ``doc``."""
    mac = hmac.new(secret, canonical(doc), hashlib.sha256).hexdigest()
    return {"algorithm": ALGORITHM, "key_id": key_id(secret), "digest": mac}


def verify(doc: dict, secret: bytes | None) -> str:
    """:data:`VALID`, :data:`EDITED`, :data:`UNSIGNED` or :data:`OTHER_KEY` (see above)."""
    field = doc.get(FIELD)
    if not isinstance(field, dict) or "digest" not in field:
        return UNSIGNED
    if secret is None or field.get("key_id") != key_id(secret):
        return OTHER_KEY
    return VALID if hmac.compare_digest(sign(doc, secret)["digest"], str(field["digest"])) else EDITED


def seed_id(seed: int) -> str | None:
    """What the results file records of a hidden seed: a digest keyed like the file's, so the grader (who holds
    the key and the seed) can tell which seed a run used, and nobody without the key can search 2**31 seeds
    for the one that matches."""
    secret = key()
    if secret is None:
        return None
    return hmac.new(secret, f"fmspec hidden seed {int(seed)}".encode(), hashlib.sha256).hexdigest()[:16]
