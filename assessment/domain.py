"""The assessment service's rules and state transitions: pure functions and classes, no I/O."""
