"""The error log: where unexpected errors (bugs) leave their tracebacks for whoever fixes them.

An exception's message may quote victim data (a URL, a label, a note), so only the
traceback's frames (file, line, function; no source text) are written in the clear; each
message is sealed with the home's data key. A purge cannot tell which tracebacks belonged
to its case, so it empties the log.
"""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ansim.store.crypto import Cipher, KeyProblem
from ansim.store.private_files import private_dir

LOG_NAME = "errors.log"
MESSAGE_CONTEXT = "error-log:message"


@dataclass(frozen=True)
class LoggedError:
    at: str
    frames: str
    messages: list[str]


def error_log_path(log_dir: Path) -> Path:
    return log_dir / LOG_NAME


def record_error(log_dir: Path, key_file: Path, exc: BaseException) -> Path:
    """Append one JSON line: the time, the frames in the clear, the sealed messages (one per
    exception of the chain; withheld when the key cannot be read)."""
    cipher = Cipher(key_file)
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "frames": "".join(_frames_without_messages(exc)),
        "messages": [_seal(cipher, message) for message in _messages(exc)],
    }
    path = error_log_path(private_dir(log_dir))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    return path


def read_errors(log_dir: Path, key_file: Path) -> list[LoggedError]:
    path = error_log_path(log_dir)
    if not path.exists():
        return []
    cipher = Cipher(key_file)
    errors = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        messages = [_unseal(cipher, sealed) for sealed in entry["messages"]]
        errors.append(LoggedError(at=entry["at"], frames=entry["frames"], messages=messages))
    return errors


def clear_error_log(log_dir: Path) -> bool:
    """Remove the log; True when there was one."""
    path = error_log_path(log_dir)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _frames_without_messages(exc: BaseException) -> list[str]:
    lines = []
    for position, link in enumerate(reversed(_chain(exc))):
        if position:
            lines.append("\nDuring the handling of the above, another exception occurred:\n\n")
        lines.append("Traceback (most recent call last):\n")
        lines.extend(
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
            for frame in traceback.extract_tb(link.__traceback__)
        )
        lines.append(f"{type(link).__module__}.{type(link).__qualname__}: [message sealed]\n")
    return lines


def _messages(exc: BaseException) -> list[str]:
    return [str(link) for link in reversed(_chain(exc))]


def _seal(cipher: Cipher, message: str) -> str | None:
    try:
        return cipher.encrypt(message.encode(), MESSAGE_CONTEXT).decode()
    except (KeyProblem, OSError):
        return None


def _unseal(cipher: Cipher, sealed: str | None) -> str:
    if sealed is None:
        return "[withheld: the key could not be read when it was logged]"
    return cipher.decrypt(sealed.encode(), MESSAGE_CONTEXT).decode()
