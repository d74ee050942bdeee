"""The one entry point from a file to its signals: sniff the real type from the bytes,
compute the file digests, then let every signal type that takes this modality add its
values (`SignalType.hash`), in registry order."""

from __future__ import annotations

from pathlib import Path

from ansim import signal_types
from ansim.detector.errors import MediaError
from ansim.detector.filehash import file_digests
from ansim.detector.hashing import HashOptions, Media
from ansim.detector.signals import MediaSignals
from ansim.detector.sniff import sniff_file


def hash_file(path: Path, options: HashOptions = HashOptions()) -> MediaSignals:
    """Fingerprint one file. Raises MediaError (with a readable message) on bad input."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise MediaError("not a regular file")
        if size == 0:
            raise MediaError("file is empty (0 bytes)")
        if size > options.max_file_bytes:
            raise MediaError(
                f"file is {size:,} bytes, over the limit of {options.max_file_bytes:,}"
            )
        media = Media(path, sniff_file(path), options)
        sha256, md5, size = file_digests(path)
        signals = MediaSignals(
            modality=media.modality, sha256=sha256, md5=md5, size=size, mime=media.sniffed.mime
        )
        for signal_type in signal_types.REGISTRY:
            if media.modality in signal_type.modalities:
                signal_type.hash(media, signals)
        media.refuse_if_unmatchable()
    except FileNotFoundError as exc:
        raise MediaError("file vanished or does not exist") from exc
    except PermissionError as exc:
        raise MediaError("file is not readable (permission denied)") from exc
    except IsADirectoryError as exc:
        raise MediaError("is a directory") from exc
    signals.warnings = media.warnings
    return signals
