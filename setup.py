"""ms_ppo: Proximal Policy Optimization on MindSpore."""

import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

# --track: Weights & Biases, or MLflow (its SQLite store needs SQLAlchemy and Alembic)
TRACK = ["wandb>=0.17", "mlflow-skinny>=2.12", "sqlalchemy>=2", "alembic>=1.10"]
PRESET_KINDS = ("env_yaml", "algo_yaml")


class BuildWithPresets(build_py):
    """Copies env_yaml/ and algo_yaml/ into the built package as ms_ppo/presets/, so that a wheel knows the
    shipped YAMLs by name (ms_ppo/config/presets.py); a source checkout reads the folders themselves."""

    def run(self):
        super().run()
        for kind in PRESET_KINDS:
            target = os.path.join(self.build_lib, "ms_ppo", "presets", kind)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(kind, target)


MUJOCO = ["gymnasium[mujoco]==1.4.0"]
# Atari: ale-py ships the ROMs; OpenCV resizes frames (4.12+ needs NumPy 2, MindSpore 2.10 needs NumPy 1).
ATARI = ["ale-py==0.12.1", "opencv-python-headless>=4.8,<4.12"]
# Super Mario Bros: the old gym API (adapted to Gymnasium in ms_ppo/envs/mario.py); nes-py builds with a C++ compiler.
MARIO = ["gym-super-mario-bros==7.4.0", "nes-py==8.2.1", "gym==0.26.2"] + ATARI

setup(
    name="ms_ppo",
    version="0.1.0",
    license="Apache-2.0",
    description="PPO training on MindSpore for Gymnasium environments (CPU, GPU, Ascend)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ms_ppo", "ms_ppo.*"]),
    package_data={"ms_ppo": ["py.typed"]},  # the package ships its type hints
    python_requires=">=3.9,<3.12",
    install_requires=[
        "mindspore==2.10.0",
        "numpy>=1.24,<2",  # MindSpore 2.10 is built against NumPy 1.x
        "gymnasium==1.4.0",
        "pyyaml>=6.0",
        "pydantic>=2.5,<3",
        "tqdm>=4.60",
        "tensorboardX>=2.6",
        "matplotlib>=3.7",
        "imageio>=2.30",
        "imageio-ffmpeg>=0.5",  # MP4 videos (the wheel carries ffmpeg)
        "pygame>=2.1",  # rgb_array rendering of the classic-control environments (CartPole, Pendulum) for videos
        "threadpoolctl>=3.1",  # NumPy's BLAS threads while the NumPy policy collects (ms_ppo/models/host_policy.py)
    ] + MUJOCO,  # MuJoCo ships inside its wheel: the default HalfCheetah needs nothing else
    extras_require={
        "mujoco": MUJOCO,
        "atari": ATARI,
        "mario": MARIO,
        # ruff and import-linter: the lint and the layer contract that `make test` checks (tests/test_architecture.py)
        "dev": ["pytest>=7", "ruff>=0.6", "import-linter>=2.1", "onnxruntime>=1.17", "hypothesis>=6", "optuna>=3.2"]
        + TRACK,
        "export": ["onnxruntime>=1.17"],  # checks ONNX exports (MindIR needs nothing more)
        "tune": ["optuna>=3.2"],  # ms-ppo-tune: hyperparameter search (TPE, median pruning, SQLite study)
        "track": TRACK,
    },
    cmdclass={"build_py": BuildWithPresets},
    entry_points={"console_scripts": ["ms-ppo-train=ms_ppo.app.cli:train_main", "ms-ppo-eval=ms_ppo.app.cli:eval_main",
                                      "ms-ppo-export=ms_ppo.app.cli:export_main",
                                      "ms-ppo-tune=ms_ppo.app.tune:tune_main"]},
)
