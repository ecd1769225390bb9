"""moto's server CLI with flowtrader's fidelity patch (devstack.moto_fidelity) applied.

It exits by itself when the local stack that started it is gone (even after a SIGKILL),
so no orphaned server keeps a port.
"""

from __future__ import annotations

import os
import threading
import time

from moto.server import main

from devstack import moto_fidelity


def exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    exit_with_parent()
    moto_fidelity.apply()
    main()
