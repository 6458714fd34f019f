"""The tools on top of a running city: the command line, the launcher, reconcile, the simulator."""
