"""Moved to `tests/fakes/broker.py` (fakes live under tests/fakes/); re-exported here for the
service tests that import it from this path."""

from tests.fakes.broker import FakeBroker, FlakyBroker, LambdaCrash

__all__ = ["FakeBroker", "FlakyBroker", "LambdaCrash"]
