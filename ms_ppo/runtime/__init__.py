"""Where a run executes: the device and graph mode, msrun jobs, and the collectives between workers."""
