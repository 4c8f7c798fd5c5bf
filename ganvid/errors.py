"""Every error a user can meet, in one place.

Each class carries a message the user can act on; the CLI prints it on one line and exits with
`exit_code`. Anything that is not a GanvidError is a bug and is reported as such.
"""


class GanvidError(Exception):
    """Base class: a problem with the user's input, files or machine, not a bug in ganvid."""

    exit_code = 1


class InputError(GanvidError):
    """A file or option given by the user is missing, unreadable or out of range."""

    exit_code = 2


class VideoError(GanvidError):
    """A video could not be decoded or encoded (corrupt, empty, audio-only, unsupported)."""

    exit_code = 3


class NoFaceError(GanvidError):
    """No face was found where one is needed."""

    exit_code = 4


class WeightsError(GanvidError):
    """A pretrained file is missing, corrupt, of the wrong format or fails its checksum."""

    exit_code = 5


class CheckpointError(WeightsError):
    """A checkpoint's contents do not match the expected layout, or it is unsafe to load."""


class DownloadError(WeightsError):
    """A download failed (offline, HTTP error, checksum mismatch)."""


class OpsError(GanvidError):
    """The custom CUDA ops could not be built or loaded when they were explicitly required."""

    exit_code = 6


class WorkdirError(GanvidError):
    """A work directory is missing a stage's outputs (e.g. `edit` before `invert`)."""

    exit_code = 7


class StackError(GanvidError):
    """The installed packages do not work together (e.g. torch and torchvision builds differ)."""

    exit_code = 8
