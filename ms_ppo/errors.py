"""The one exception type that reaches the user as a single line and exit status 2."""


class UserInputError(Exception):
    """Bad input the user can fix: a flag, a YAML file, an environment id, a device, a checkpoint.

    The command-line entry points print ``str(error)`` on one line and exit with status 2, without a traceback.
    Raise it before anything is written, so that bad input never overwrites earlier results.
    """


class TrainingFailed(Exception):
    """Training could not finish (a worker died, the numbers diverged): one line and exit status 1."""


class TrainingDiverged(TrainingFailed):
    """Too many consecutive updates were non-finite. The message names the last good checkpoint, which is never
    overwritten by a non-finite state."""
