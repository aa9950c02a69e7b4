"""Are two training runs the same? Compares the newest checkpoint's arrays bit for bit and every progress.csv column
except the timing ones (wall_seconds, charts/SPS, time/*), which no two runs share.

    python benchmarks/compare_runs.py RUN_DIR_A RUN_DIR_B

Prints one line per difference and exits 1 if there is any, 0 if the runs are identical.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from typing import Dict, List

import mindspore
import numpy as np

TIMING_COLUMNS = ("wall_seconds", "charts/SPS")


def newest_checkpoint(run_dir: str) -> str:
    directory = os.path.join(run_dir, "ckpt")
    names = sorted(name for name in os.listdir(directory) if name.endswith(".ckpt"))
    return os.path.join(directory, names[-1])


def read_progress(run_dir: str) -> List[Dict[str, str]]:
    with open(os.path.join(run_dir, "progress.csv"), newline="", encoding="utf-8") as handle:
        return [{key: value for key, value in row.items()
                 if key not in TIMING_COLUMNS and not key.startswith("time/")} for row in csv.DictReader(handle)]


def differences(run_a: str, run_b: str) -> List[str]:
    found: List[str] = []
    ckpt_a, ckpt_b = newest_checkpoint(run_a), newest_checkpoint(run_b)
    if os.path.basename(ckpt_a) != os.path.basename(ckpt_b):
        found.append(f"newest checkpoints differ: {os.path.basename(ckpt_a)} vs {os.path.basename(ckpt_b)}")
    params_a, params_b = mindspore.load_checkpoint(ckpt_a), mindspore.load_checkpoint(ckpt_b)
    for name in sorted(set(params_a) | set(params_b)):
        if name not in params_a or name not in params_b:
            found.append(f"parameter {name} is in one checkpoint only")
        elif not np.array_equal(params_a[name].asnumpy(), params_b[name].asnumpy()):
            found.append(f"parameter {name} differs")
    rows_a, rows_b = read_progress(run_a), read_progress(run_b)
    if len(rows_a) != len(rows_b):
        found.append(f"progress.csv has {len(rows_a)} vs {len(rows_b)} rows")
    for index, (row_a, row_b) in enumerate(zip(rows_a, rows_b)):
        for key in sorted(set(row_a) | set(row_b)):
            if row_a.get(key) != row_b.get(key):
                found.append(f"progress.csv row {index + 1} {key}: {row_a.get(key)} vs {row_b.get(key)}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    args = parser.parse_args()
    found = differences(args.run_a, args.run_b)
    for line in found[:50]:
        print(line)
    rows = len(read_progress(args.run_a))
    params = len(mindspore.load_checkpoint(newest_checkpoint(args.run_a)))
    print(f"{'identical' if not found else f'{len(found)} differences'}: {params} checkpoint arrays, "
          f"{rows} progress.csv rows ({args.run_a} vs {args.run_b})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
