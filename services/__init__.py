"""The top floors: ``runtime`` puts the five services together and runs them; ``tools`` (the
command line, launcher, reconcile, simulator) sit on a running city."""
