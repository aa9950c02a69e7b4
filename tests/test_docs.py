"""The README is short and its Chinese version mirrors it; every link resolves; the configuration reference is
generated from the schema and up to date."""

import glob
import os
import re
import subprocess
import sys

import pytest
from paths import ROOT

README = os.path.join(ROOT, "README.md")
README_CN = os.path.join(ROOT, "README_CN.md")
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
README_LIMIT = 15_000  # bytes: the first screen and the way to the rest, not the whole manual

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def outline(text):
    """Heading levels, code blocks, table shapes with their code/number cells, link targets: what a translation
    must keep."""
    code = FENCE.findall(text)
    prose = FENCE.sub("", text)
    headings = [len(match) for match in re.findall(r"^(#+) ", prose, re.MULTILINE)]
    tables, rows = [], []
    for line in prose.splitlines() + [""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows.append([" ".join(re.findall(r"`[^`]*`|\d[\d.,]*", cell)) for cell in cells])
        elif rows:
            tables.append(rows)
            rows = []
    return {"headings": headings, "code": code, "tables": tables, "links": LINK.findall(prose),
            "inline code": sorted(re.findall(r"`[^`\n]+`", prose))}


def test_readme_is_short():
    assert os.path.getsize(README) <= README_LIMIT


@pytest.mark.parametrize("part", ["headings", "code", "tables", "links", "inline code"])
def test_readme_cn_mirrors_readme(part):
    assert outline(read(README_CN))[part] == outline(read(README))[part]


@pytest.mark.parametrize("path", [README, README_CN] + DOCS, ids=os.path.basename)
def test_relative_links_resolve(path):
    missing = []
    for target in LINK.findall(FENCE.sub("", read(path))):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file_part = target.split("#")[0]
        if not os.path.exists(os.path.join(os.path.dirname(path), file_part)):
            missing.append(target)
    assert not missing


def test_configuration_reference_is_up_to_date():
    result = subprocess.run([sys.executable, "-m", "ms_ppo.config.docs", "--check",
                             os.path.join(ROOT, "docs", "configuration.md")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_configuration_reference_names_every_key():
    from ms_ppo.config import Settings

    text = read(os.path.join(ROOT, "docs", "configuration.md"))
    for section, field in Settings.model_fields.items():
        for key in field.annotation.model_fields:
            assert f"| `{section}.{key}` |" in text
