"""The errors of the expert buffer (every message says what to do)."""
from __future__ import annotations

__all__ = ["ExpertMismatchError", "MissingExpertsError", "DamagedExpertError"]


class ExpertMismatchError(ValueError):
    """Stored experts were built with settings different from the ones asked for."""


class MissingExpertsError(FileNotFoundError):
    """The buffer directory lacks (complete) experts; the message says how to build them."""

    def __init__(self, message: str, *, buffer_dir=None, missing=(), found=0):
        super().__init__(message)
        self.buffer_dir = buffer_dir
        self.missing = tuple(missing)
        self.found = found


class DamagedExpertError(MissingExpertsError):
    """A stored expert could not be read (truncated / corrupt files). It has been set aside
    (renamed into <buffer_dir>/damaged/, not deleted), so it now counts as missing: building
    the buffer again (the distill command does it itself) retrains it bit for bit."""
