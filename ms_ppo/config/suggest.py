"""'Did you mean ...?' hints for misspelt keys and names."""

from __future__ import annotations

import difflib
from typing import Iterable


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'gamma'?)`` for the closest candidate, or an empty string when none is close."""
    close = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
