"""flowtrader's Lambda code: everything Chalice deploys beside app.py."""

__version__ = "0.1.0"
