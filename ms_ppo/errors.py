"""The one exception type that reaches the user as a single line and exit status 2."""

import errno

_ESCAPED = {code: repr(chr(code))[1:-1] for code in (*range(32), 0x7F, 0x85, 0x2028, 0x2029)}  # what splits lines


class UserInputError(Exception):
    """Bad input the user can fix: a flag, a YAML file, an environment id, a device, a checkpoint.

    The command-line entry points print ``str(error)`` on one line and exit with status 2, without a traceback.
    Raise it before anything is written, so that bad input never overwrites earlier results.
    Control characters that came in with the input (a key with a newline in it) are shown escaped, so the
    message stays one line whatever it quotes.
    """

    def __str__(self) -> str:
        return super().__str__().translate(_ESCAPED)


class TrainingFailed(Exception):
    """Training could not finish (a worker died, the numbers diverged): one line and exit status 1."""


class TrainingDiverged(TrainingFailed):
    """Too many consecutive updates were non-finite. The message names the last good checkpoint, which is never
    overwritten by a non-finite state."""


class EnvironmentFailed(TrainingFailed):
    """An environment raised in step/reset or returned a non-finite observation or reward: one line naming the
    environment's index and the step, and exit status 1; nothing of that rollout reaches a checkpoint."""


class DiskFull(TrainingFailed):
    """A write found the device full: one line and exit status 1; the older checkpoints are intact."""


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)  # no space left, or over quota


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


def disk_full_message(error: OSError) -> str:
    """One line for a write that found the device full."""
    where = f" writing {error.filename}" if error.filename else ""
    return f"no space left on the device{where} ({error.strerror})"
