"""Errors the detector raises for bad input; each carries a message fit for an analyst."""


class MediaError(Exception):
    """The file cannot be fingerprinted (corrupt, unsupported, too large, too low quality)."""


class UnsupportedMedia(MediaError):
    """The bytes are of a kind no hasher handles."""


class LowQuality(MediaError):
    """The media decoded but its fingerprint is too weak to match safely."""
