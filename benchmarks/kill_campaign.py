"""Kill campaign: SIGKILL a CartPole run at random moments, resume it each time, and check that nothing is lost.

    python benchmarks/kill_campaign.py --kills 20 --out benchmarks/results/kill_campaign.json

Each kill: the run is started (the first time) or resumed with ``--resume``; after a random delay it is stopped
with SIGSTOP, asked for its Python stack (SIGUSR1: train.py prints every thread's stack, ms_ppo/app/cli.py) so the
moment is known (collection, update, checkpoint write, evaluation, video writing, start-up), then killed with
SIGKILL. Most delays are uniform over the process's life; some wait for a checkpoint's temporary file to appear
(a write in progress) and the last ones for the final evaluation and video. After the last kill the run is
resumed to the end. What must hold, and is checked for every kill:

- every resume loads a checkpoint (its log says "resumed from ... at step S") and S never goes back;
- the final run completes with the asked steps, its result.json says so, and progress.csv has each iteration
  once, in order, with no gap;
- every checkpoint left on disk verifies against its checksums, and no temporary file is left behind;
- the final video is a readable GIF.

Writes ``--out`` (JSON: every kill's delay, moment, step) and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from _common import ROOT, TMP_DIR, cpu_model, load_average, write_json

ITERATION_STEPS = 256  # 4 envs x 64 steps
SETTINGS = {"ppo.num_envs": 4, "ppo.rollout_steps": 64, "train.save_every": 1, "train.eval_every": 4,
            "train.eval_episodes": 5, "policy.hidden_sizes": "[256,256]", "train.log_every": 1}
# Stack frames that name the moment of a kill, most specific first (file or function names in ms_ppo).
MOMENTS = [("video writing", ("write_video", "record_episode", "mimsave")),
           ("checkpoint write", ("checkpoint.py",)),
           ("evaluation", ("evaluation.py",)),
           ("update", ("learner.py", "update.py")),
           ("collection", ("collector.py",)),
           ("logging (CSV, TensorBoard, plot)", ("loggers.py", "plots.py")),
           ("between phases (trainer)", ("trainer.py",)),
           ("start-up / compile", ("session.py", "assembly.py", "cli.py"))]


def train_command(run_dir: str, steps: int, resume: bool) -> List[str]:
    command = [sys.executable, os.path.join(ROOT, "train.py"), "--device_target", "CPU", "--total_steps", str(steps),
               "--video", "gif"]
    if resume:
        return command + ["--resume", run_dir]
    sets = [item for key, value in SETTINGS.items() for item in ("--set", f"{key}={value}")]
    return command + ["--env_yaml", os.path.join(ROOT, "env_yaml", "CartPole-v1.yaml"), "--output_dir", run_dir,
                      *sets]


def main_thread_stack(dump: str) -> str:
    """The block of faulthandler's dump whose outermost frame is train.py's module: the main thread."""
    blocks = dump.split("\n\n")
    return next((block for block in blocks if "train.py\", line" in block and "in <module>" in block), "")


def moment_of(dump: str) -> str:
    """The most specific ms_ppo activity in the main thread's stack."""
    frames = [line for line in main_thread_stack(dump).splitlines() if line.strip().startswith("File ")]
    for name, markers in MOMENTS:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    return "other"


def final_evaluation_done(log: str, steps: int) -> bool:
    """The log shows the last iteration's evaluation, or a resume at the last step (no iteration left: it
    records the video first): what follows is the "after" video."""
    last = re.search(r"iteration (\d+)/\1,", log)
    if last:
        return f"Evaluate result for episode {last.group(1)} " in log
    return re.search(rf"resumed from \S+ at step {steps}\b", log) is not None


def newest_step(run_dir: str) -> int:
    steps = [int(m.group(1)) for path in glob.glob(os.path.join(run_dir, "ckpt", "step_*.ckpt"))
             for m in [re.search(r"step_(\d+)\.ckpt$", path)] if m]
    return max(steps, default=0)


def wait_for(predicate, process: subprocess.Popen, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.002)
    return False


def kill_with_stack(process: subprocess.Popen, stderr_path: str) -> str:
    """Stop the process, have it print its stack, kill it; the stack says what it was doing."""
    before = os.path.getsize(stderr_path)
    process.send_signal(signal.SIGSTOP)
    process.send_signal(signal.SIGUSR1)  # handled when the process runs again
    process.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline and not main_thread_stack(_tail(stderr_path, before)):
        time.sleep(0.005)  # the dump is complete once the main thread's outermost frame is printed
    process.send_signal(signal.SIGKILL)
    process.wait()
    return _tail(stderr_path, before)


def _tail(path: str, offset: int) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        return handle.read()


def one_kill(index: int, plan: str, run_dir: str, steps: int, rng: random.Random, log_dir: str) -> Dict[str, Any]:
    resume = os.path.isdir(os.path.join(run_dir, "ckpt"))
    stdout_path, stderr_path = (os.path.join(log_dir, f"kill{index:02d}.{kind}") for kind in ("out", "err"))
    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        process = subprocess.Popen(train_command(run_dir, steps, resume), stdout=out, stderr=err, text=True)
        started = time.monotonic()
        if plan == "checkpoint write":  # a temporary checkpoint file in ckpt/: a write in progress
            wait_for(lambda: glob.glob(os.path.join(run_dir, "ckpt", ".tmp_*")), process, 120)
        elif plan == "final video: recording":  # the final evaluation is done: the "after" episode is recorded
            wait_for(lambda: final_evaluation_done(_tail(stdout_path, 0), steps), process, 300)
            time.sleep(rng.uniform(0.3, 1.2))
        elif plan == "final video: writing":  # the GIF's temporary file exists: it is being written
            wait_for(lambda: glob.glob(os.path.join(run_dir, "videos", ".tmp_*")), process, 300)
        else:
            wait_for(lambda: "first iteration" in _tail(stdout_path, 0), process, 120)
            time.sleep(rng.uniform(0.0, 4.0))
        delay = time.monotonic() - started
        if process.poll() is not None:
            return {"kill": index, "plan": plan, "killed": False, "exit_status": process.returncode}
        stack = kill_with_stack(process, stderr_path)
    log = _tail(stdout_path, 0) + _tail(stderr_path, 0)
    resumed = re.search(r"resumed from (\S+) at step (\d+)", log)
    return {"kill": index, "plan": plan, "killed": True, "seconds_after_start": round(delay, 2),
            "moment": moment_of(stack), "resumed_from_step": int(resumed.group(2)) if resumed else None,
            "was_resume": resume, "newest_checkpoint_step_after_kill": newest_step(run_dir)}


def check_final(run_dir: str, steps: int) -> Dict[str, Any]:
    sys.path.insert(0, ROOT)
    from ms_ppo.training import checkpoint

    with open(os.path.join(run_dir, "progress.csv"), newline="", encoding="utf-8") as handle:
        logged = [int(row["global_step"]) for row in csv.DictReader(handle)]
    expected = list(range(ITERATION_STEPS, steps + 1, ITERATION_STEPS))
    result = json.load(open(os.path.join(run_dir, "result.json"), encoding="utf-8"))
    kept = checkpoint.list_checkpoints(os.path.join(run_dir, "ckpt"))
    import imageio.v2 as imageio

    frames = len(imageio.mimread(os.path.join(run_dir, "videos", "after.gif"), memtest=False))
    temporaries = glob.glob(os.path.join(run_dir, "**", ".tmp_*"), recursive=True)
    return {"total_steps": result["total_steps"], "asked_steps": steps,
            "progress_rows_as_expected": logged == expected, "progress_rows": len(logged),
            "checkpoints_intact": all(checkpoint.damage(path) is None for path in kept), "checkpoints": len(kept),
            "temporaries_left": len(temporaries), "after_gif_frames": frames,
            "eval_return_mean": result["eval_return_mean"]}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=ITERATION_STEPS * 60)
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "kill_campaign.json"))
    args = parser.parse_args(argv)
    work = os.path.join(TMP_DIR, "kill_campaign")
    shutil.rmtree(work, ignore_errors=True)
    run_dir, log_dir = os.path.join(work, "run"), os.path.join(work, "logs")
    os.makedirs(log_dir)
    rng = random.Random(args.seed)
    final_video_kills = 2
    plans = [("checkpoint write" if i % 3 == 1 else "random") for i in range(args.kills - final_video_kills)]
    plans += ["final video: recording", "final video: writing"]
    kills, last_step = [], 0
    for index, plan in enumerate(plans, start=1):
        outcome = one_kill(index, plan, run_dir, args.steps, rng, log_dir)
        outcome["step_never_went_back"] = outcome.get("newest_checkpoint_step_after_kill", last_step) >= last_step
        last_step = outcome.get("newest_checkpoint_step_after_kill", last_step)
        kills.append(outcome)
        print(json.dumps(outcome), flush=True)
    final_status = 0
    if not os.path.exists(os.path.join(run_dir, "result.json")):  # else a process the campaign missed finished it
        with open(os.path.join(log_dir, "final.out"), "w") as out:
            final_status = subprocess.call(train_command(run_dir, args.steps, resume=True), stdout=out,
                                           stderr=subprocess.STDOUT)
    final = {"exit_status": final_status, **(check_final(run_dir, args.steps) if final_status == 0 else {})}
    resumes = [k for k in kills if k.get("was_resume")]
    summary = {
        "kills": sum(k["killed"] for k in kills),
        "resumes_that_loaded": sum(k["resumed_from_step"] is not None for k in resumes),
        "resumes": len(resumes), "moments": {m: sum(k.get("moment") == m for k in kills)
                                             for m in sorted({k.get("moment", "not killed") for k in kills})},
        "steps_never_went_back": all(k["step_never_went_back"] for k in kills),
        "final": final,
    }
    summary["passed"] = bool(summary["kills"] == args.kills and summary["resumes_that_loaded"] == len(resumes)
                             and summary["steps_never_went_back"] and final_status == 0
                             and final["progress_rows_as_expected"] and final["checkpoints_intact"]
                             and final["total_steps"] == args.steps and final["temporaries_left"] == 0)
    record = {"command": "python benchmarks/kill_campaign.py " + " ".join(argv or sys.argv[1:]),
              "cpu": cpu_model(), "load_average_at_end": load_average(), "settings": SETTINGS,
              "summary": summary, "kills": kills}
    write_json(args.out, record)
    write_markdown(args.out[:-len(".json")] + ".md", record)
    print(json.dumps(summary, indent=1))
    return 0 if summary["passed"] else 1


def write_markdown(path: str, record: Dict[str, Any]) -> None:
    summary, final = record["summary"], record["summary"]["final"]
    lines = ["# Kill campaign: SIGKILL at random moments, then --resume", "",
             f"Command: `{record['command']}`  ", f"CPU: {record['cpu']}; load average at the end: "
             f"{record['load_average_at_end']}", "",
             f"**{'passed' if summary['passed'] else 'FAILED'}**: {summary['kills']} kills; "
             f"{summary['resumes_that_loaded']} of {summary['resumes']} resumes loaded a checkpoint; the newest "
             f"checkpoint step never went back: {summary['steps_never_went_back']}; final run: exit "
             f"{final['exit_status']}, {final.get('total_steps')} of {final.get('asked_steps')} steps, "
             f"progress.csv rows as expected: {final.get('progress_rows_as_expected')}, checkpoints intact: "
             f"{final.get('checkpoints_intact')}, temporaries left: {final.get('temporaries_left')}, "
             f"after.gif frames: {final.get('after_gif_frames')}.", "",
             "Moments hit: " + ", ".join(f"{name} {count}" for name, count in summary["moments"].items()), "",
             "| kill | aimed at | moment (from the stack) | s after start | resumed from step "
             "| newest checkpoint after |",
             "|---|---|---|---|---|---|"]
    for kill in record["kills"]:
        lines.append(f"| {kill['kill']} | {kill['plan']} | {kill.get('moment', 'not killed')} | "
                     f"{kill.get('seconds_after_start')} | {kill.get('resumed_from_step')} | "
                     f"{kill.get('newest_checkpoint_step_after_kill')} |")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
