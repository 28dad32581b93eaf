"""User-facing exceptions.

Every error a user can cause (bad path, wrong weights, mismatched gallery...) is raised as a
:class:`ReidError` subclass. The CLI prints ``str(err)`` on one line and exits non-zero; the
traceback is shown only with ``--verbose``.
"""

from __future__ import annotations


class ReidError(Exception):
    """Base class of errors that are reported to the user as one line."""

    exit_code: int = 2


class WeightsNotFoundError(ReidError):
    """Named or local weights could not be resolved (offline, missing file, bad checksum)."""


class VideoError(ReidError):
    """A video cannot be opened or decoded."""


class NoPersonError(ReidError):
    """No person tracklet was found where one was required (e.g. a query clip)."""


class GalleryError(ReidError):
    """The gallery is missing, corrupt, or incompatible with the requested embedder."""


class CheckpointError(ReidError):
    """A checkpoint is missing, unreadable, or of the wrong kind."""


class ConfigError(ReidError):
    """A configuration file or value is invalid."""


class DatasetError(ReidError):
    """A dataset root is missing files or has an unexpected layout."""


class SkeletonFormatError(ReidError):
    """Skeletons of one format were given to a model trained on another."""
