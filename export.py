"""Export a trained policy: python export.py --ckpt runs/<run> [--best] --format MINDIR|ONNX --out policy"""

import sys

from ms_ppo.app.cli import export_main

if __name__ == "__main__":
    sys.exit(export_main())
