"""flowtrader's Lambda code: everything Chalice deploys beside app.py."""
