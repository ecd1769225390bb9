"""Pure decision rules shared by the live Lambdas and the backtest.

No I/O, no clock reads, no boto3/requests/vendor SDKs/pandas: time and state are passed in.
"""
