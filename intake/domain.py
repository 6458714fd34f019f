"""The intake service's rules and state transitions: pure functions and classes, no I/O."""
