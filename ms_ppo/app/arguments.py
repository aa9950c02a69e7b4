"""What every command-line entry point shares: an argparse parser whose errors are one line, value types with
one-line messages, and the wrapper that turns errors into exit statuses (2: bad input, 1: training failed)."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any, Callable, List, Optional

from ms_ppo.errors import DiskFull, TrainingFailed, UserInputError, disk_full_message, is_disk_full


class Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as a UserInputError (one line, exit 2) instead of its usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserInputError(f"{self.prog}: {message}")


def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None


def positive(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative(text: str) -> int:
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def at_most(limit: int, base: Callable[[str], int]) -> Callable[[str], int]:
    """``base`` (positive or non_negative) with an upper bound as well, e.g. the largest seed MindSpore takes."""
    def parse(text: str) -> int:
        value = base(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit}, got {value}")
        return value
    return parse


class _DiskFullNotes:
    """Writes that meet a full disk outside the command's own code (TensorBoard's writer thread, flushes at exit)
    are noted without a traceback; the command reports the full disk once, on one line, and exits with 1."""

    def __init__(self) -> None:
        self.reported = False
        self.unreported: Optional[OSError] = None
        self._thread_hook, self._unraisable_hook = threading.excepthook, sys.unraisablehook

    def install(self) -> None:
        threading.excepthook, sys.unraisablehook = self._on_thread_error, self._on_unraisable

    def _note(self, error: BaseException) -> bool:
        if not is_disk_full(error):
            return False
        if not self.reported and self.unreported is None:
            self.unreported = error
            if threading.current_thread() is threading.main_thread():  # at exit: the command has returned
                print(f"error: {disk_full_message(error)} while flushing at exit", file=sys.stderr)
                self.reported = True
        return True

    def _on_thread_error(self, args: Any) -> None:
        if not self._note(args.exc_value):
            self._thread_hook(args)

    def _on_unraisable(self, unraisable: Any) -> None:
        if not self._note(unraisable.exc_value):
            self._unraisable_hook(unraisable)

    def report(self, message: str) -> int:
        self.reported = True
        print(f"error: {message}", file=sys.stderr)
        return 1


def run_command(main: Callable[[List[str]], Optional[int]], argv: Optional[List[str]]) -> int:
    disk = _DiskFullNotes()
    disk.install()
    try:
        status = main(sys.argv[1:] if argv is None else argv) or 0
        if disk.unreported is not None and not disk.reported:  # only a background writer met the full disk
            return disk.report(disk_full_message(disk.unreported))
        return status
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingFailed as error:
        if isinstance(error, DiskFull):
            return disk.report(str(error))
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        if not is_disk_full(error):
            raise
        return disk.report(f"{disk_full_message(error)}; free some space and run the command again")
