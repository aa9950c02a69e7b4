"""The application layer: the Session that assembles a run, checkpoint evaluation, and the command line."""
