"""Evaluate a checkpoint: python eval.py --ckpt runs/<run>/ckpt [--episodes 10]"""

import sys

from ms_ppo.app.cli import eval_main

if __name__ == "__main__":
    sys.exit(eval_main())
