"""What every command-line entry point shares: an argparse parser whose errors are one line, value types with
one-line messages, and the wrapper that turns errors into exit statuses (2: bad input, 1: training failed)."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, List, Optional

from ms_ppo.errors import TrainingFailed, UserInputError


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


def run_command(main: Callable[[List[str]], Optional[int]], argv: Optional[List[str]]) -> int:
    try:
        return main(sys.argv[1:] if argv is None else argv) or 0
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
