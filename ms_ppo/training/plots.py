"""Learning-curve plots from progress.csv files (matplotlib, no display needed)."""

from __future__ import annotations

import csv
from typing import Dict, List, Tuple

import numpy as np


def read_curve(csv_path: str, column: str = "charts/episodic_return") -> Tuple[np.ndarray, np.ndarray]:
    """(global_step, value) pairs of one progress.csv column, skipping empty cells."""
    steps: List[float] = []
    values: List[float] = []
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get(column):
                steps.append(float(row["global_step"]))
                values.append(float(row[column]))
    return np.array(steps), np.array(values)


def plot_learning_curves(runs: Dict[str, str], png_path: str, title: str = "PPO learning curve") -> None:
    """One line per run (label -> progress.csv): mean return of the last 100 training episodes, and the
    deterministic evaluations as markers where there are any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, csv_path in runs.items():
        steps, returns = read_curve(csv_path)
        line, = ax.plot(steps, returns, label=f"{label} (training episodes, last 100)")
        eval_steps, eval_returns = read_curve(csv_path, "eval/return_mean")
        if eval_steps.size:
            ax.plot(eval_steps, eval_returns, "o", color=line.get_color(), label=f"{label} (evaluation)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
