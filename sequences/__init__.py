"""One module per event type, each registering its Sequence with `worker.registry` on import."""

from sequences import deal_risk_scan

__all__ = ["deal_risk_scan"]
