"""Search hyperparameters: python tune.py --env_yaml ENV --algo_yaml ALGO --space SPACE.yaml --trials N --steps S"""

import sys

from ms_ppo.app.tune import tune_main

if __name__ == "__main__":
    sys.exit(tune_main())
