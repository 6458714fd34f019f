"""The closure service's use cases: load, decide with the domain, save and emit events in one
transaction.
"""
