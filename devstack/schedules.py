"""The local stack's schedules process: every `@app.schedule` job at its local cadence, in a
process of its own (each is a Lambda of its own in AWS). See `devstack.worker.main`."""

from __future__ import annotations

from devstack.worker import main

if __name__ == "__main__":
    raise SystemExit(main("schedules"))
