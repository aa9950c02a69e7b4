"""ms_ppo: Proximal Policy Optimization on MindSpore."""

from setuptools import find_packages, setup

MUJOCO = ["gymnasium[mujoco]==1.4.0"]

setup(
    name="ms_ppo",
    version="0.1.0",
    description="PPO training on MindSpore for Gymnasium environments (CPU, GPU, Ascend)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ms_ppo", "ms_ppo.*"]),
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
    ] + MUJOCO,  # MuJoCo ships inside its wheel: the default HalfCheetah needs nothing else
    extras_require={
        "mujoco": MUJOCO,
        "dev": ["pytest>=7"],
    },
    entry_points={"console_scripts": ["ms-ppo-train=ms_ppo.cli:train_main", "ms-ppo-eval=ms_ppo.cli:eval_main"]},
)
