"""Settings: the schema (the only place defaults live), YAML loading and the MindSpore Reinforcement layout."""

from ms_ppo.config.loading import load_settings, parse_override, read_yaml, save_settings, settings_from_dict
from ms_ppo.config.schema import (
                                  EnvSettings,
                                  NormalizeSettings,
                                  PolicySettings,
                                  PPOSettings,
                                  PrecisionSettings,
                                  RuntimeSettings,
                                  Settings,
                                  TrainSettings,
)

__all__ = ["EnvSettings", "NormalizeSettings", "PPOSettings", "PolicySettings", "PrecisionSettings",
           "RuntimeSettings", "Settings", "TrainSettings", "load_settings", "parse_override", "read_yaml",
           "save_settings", "settings_from_dict"]
