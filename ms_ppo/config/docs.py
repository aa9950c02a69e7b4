"""The configuration reference (docs/configuration.md), generated from the schema so that it cannot drift.

    python -m ms_ppo.config.docs > docs/configuration.md     # write it
    python -m ms_ppo.config.docs --check docs/configuration.md  # exit 1 when the file is out of date

tests/test_docs.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from pathlib import Path
from typing import Any, List

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ms_ppo.config.schema import Settings

HEADER = """# Configuration reference

Every key of the env and algo YAMLs, by section. A YAML file holds sections (`env:`, `ppo:`, ...) with keys from
the tables below; `--set section.key=value` overrides one key on the command line, and the flags of `train.py`
set the `runtime` and `train` keys they name. Priority, lowest first: the defaults here, the env YAML, the algo
YAML, `--set`, the flags.

This file is generated from `ms_ppo/config/schema.py` by `python -m ms_ppo.config.docs > docs/configuration.md`;
`make test` fails when it is out of date.
"""


def type_name(annotation: Any) -> str:
    """A short, readable type: ``int``, ``float or null``, ``"sync" | "async"``, ``list of int``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(value) for value in args)
    if origin is typing.Union:
        named = [type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in args else "")
    if origin in (list, List):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return f"`{json.dumps(value)}`"


def bounds_text(field: FieldInfo) -> str:
    """The numeric bounds pydantic enforces (``ge=0`` ...), as ``≥ 0`` and so on."""
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for constraint in field.metadata:
        for name, symbol in symbols.items():
            value = getattr(constraint, name, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def section_table(name: str, section: type) -> List[str]:
    lines = [f"## `{name}`", "", (section.__doc__ or "").strip(), "",
             "| key | type | default | bounds | description |", "|---|---|---|---|---|"]
    for key, field in section.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name}.{key}` | {type_name(field.annotation)} | {default_text(field)} | "
                     f"{bounds_text(field)} | {description} |")
    return lines + [""]


def render() -> str:
    lines = [HEADER]
    for name, field in Settings.model_fields.items():
        section = field.annotation
        assert isinstance(section, type) and issubclass(section, BaseModel), name
        lines.extend(section_table(name, section))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: "List[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description="Print the configuration reference, or check a file against it.")
    parser.add_argument("--check", metavar="FILE", help="exit 1 when FILE differs from what would be generated")
    args = parser.parse_args(argv)
    text = render()
    if args.check is None:
        sys.stdout.write(text)
        return 0
    path = Path(args.check)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        print(f"error: {path} is out of date; regenerate it: python -m ms_ppo.config.docs > {path}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
