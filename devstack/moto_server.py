"""moto's server CLI with flowtrader's fidelity patch (devstack.moto_fidelity) applied."""

from __future__ import annotations

from moto.server import main

from devstack import moto_fidelity

if __name__ == "__main__":
    moto_fidelity.apply()
    main()
