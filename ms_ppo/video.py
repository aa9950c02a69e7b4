"""Videos of the deterministic policy: ``eval.py --video out.gif|out.mp4`` and ``train.py --video`` clips.

Frames come from the environment's ``rgb_array`` renderer. MuJoCo renders offscreen through EGL on a machine
without a display (``MUJOCO_GL=egl`` is set by ms_ppo.envs when ``DISPLAY`` is unset; Mesa's EGL, Debian
packages libegl1 and libegl-mesa0, is enough: no GPU needed). GIFs are written with Pillow, MP4s with
imageio-ffmpeg (its wheel carries ffmpeg).
"""

from __future__ import annotations

import glob
import os
import tempfile
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ms_ppo.envs import make_env
from ms_ppo.errors import UserInputError

VIDEO_FORMATS = (".gif", ".mp4")


def check_video_path(path: str) -> None:
    """Refuse a video path ms_ppo cannot write, before any training or evaluation starts."""
    if os.path.splitext(path)[1].lower() not in VIDEO_FORMATS:
        raise UserInputError(f"--video {path}: use a .gif or .mp4 file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserInputError(f"--video {path}: directory {directory} does not exist")


def record_episode(policy: Callable[[np.ndarray], np.ndarray], env_id: str, kwargs: Optional[Dict[str, Any]],
                   seed: int, wrappers: str = "none", max_frames: int = 1000,
                   render_mode: str = "rgb_array") -> List[np.ndarray]:
    """Frames (H, W, 3) uint8 of one deterministic episode (at most ``max_frames``), from its first observation.

    With ``render_mode="human"`` the episode plays in a window instead and no frames are returned.
    """
    if render_mode == "human" and not os.environ.get("DISPLAY"):
        raise UserInputError("--render human needs a display (DISPLAY is not set); record a file with --video")
    try:
        env = make_env(env_id, kwargs, render_mode=render_mode, wrappers=wrappers, training=False)
    except UserInputError:
        raise
    except Exception as error:  # renderer set-up problems surface here for some environments
        raise UserInputError(f"cannot render {env_id}: {str(error).splitlines()[0]}") from None
    try:
        _follow_the_body(env)
        capture = (lambda: _render(env, env_id)) if render_mode == "rgb_array" else (lambda: None)
        obs, _ = env.reset(seed=seed)
        frames = [capture()]
        done = False
        while not done and len(frames) < max_frames:
            action = policy(np.asarray(obs)[None])[0]
            obs, _, terminated, truncated, _ = env.step(action)
            frames.append(capture())
            done = terminated or truncated
        return [frame for frame in frames if frame is not None]
    finally:
        env.close()


def _follow_the_body(env) -> None:
    """MuJoCo locomotion models carry a camera named "track" that follows the body; the default camera is fixed,
    so a running HalfCheetah would leave the picture. Use "track" when the model has one."""
    inner = env.unwrapped
    renderer = getattr(inner, "mujoco_renderer", None)
    if renderer is None or getattr(renderer, "camera_id", None) not in (None, -1):  # -1: the free camera
        return
    import mujoco

    camera = mujoco.mj_name2id(inner.model, mujoco.mjtObj.mjOBJ_CAMERA, "track")
    if camera >= 0:
        renderer.camera_id = camera


def _render(env, env_id: str) -> np.ndarray:
    try:
        frame = env.render()
    except Exception as error:  # e.g. MuJoCo without an OpenGL platform, classic control without pygame
        message = str(error).splitlines()[0]
        hint = ("; on a machine without a display install Mesa's EGL (apt install libegl1 libegl-mesa0) and set "
                "MUJOCO_GL=egl, or MUJOCO_GL=osmesa with libosmesa6") if "GL" in message or "OpenGL" in message \
            else ""
        raise UserInputError(f"cannot render {env_id}: {message}{hint}") from None
    if frame is None:
        raise UserInputError(f"{env_id} returned no frame in rgb_array mode")
    return np.asarray(frame, np.uint8)


def write_video(frames: List[np.ndarray], path: str, fps: int = 30) -> str:
    """Write frames as a GIF or MP4 (by the file extension); return the path.

    The file is written under a temporary name beside ``path`` and renamed when complete, so a run killed while
    writing (or a full disk) never leaves a truncated video under the final name.
    """
    import imageio.v2 as imageio

    check_video_path(path)
    directory, extension = os.path.dirname(os.path.abspath(path)), os.path.splitext(path)[1]
    prefix = f".tmp_{os.path.basename(path)}_"
    for stale in glob.glob(os.path.join(glob.escape(directory), glob.escape(prefix) + "*")):
        os.remove(stale)  # left by a process killed while writing this same file
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=extension)
    os.close(fd)
    try:
        if extension.lower() == ".gif":
            imageio.mimsave(tmp, frames, duration=1000.0 / fps, loop=0)
        else:
            try:
                imageio.mimsave(tmp, frames, fps=fps, macro_block_size=1)
            except (ImportError, ValueError, RuntimeError) as error:
                raise UserInputError(f"cannot write {path}: {str(error).splitlines()[0]} (MP4 needs imageio-ffmpeg: "
                                     f"pip install imageio-ffmpeg; or write a .gif)") from None
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
