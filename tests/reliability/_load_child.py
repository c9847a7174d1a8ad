"""One writer of the load test: a tiny training loop (TrainingMonitor over its own Run, with
a live Prometheus exporter on PORT) logging ``loss = 1/(i+1)`` and ``acc = i/STEPS`` at each
of STEPS steps, ``DELAY`` s apart. It prints ``done`` after the loop and closes the run once
RELEASE exists (so that Prometheus can scrape the last step first).

usage: _load_child.py ROOT NAME STEPS DELAY PORT RELEASE
"""

from __future__ import annotations

import io
import os
import sys
import time

from loopwise.export.prometheus import PrometheusExporter
from loopwise.record import Run
from loopwise.watch.monitor import TrainingMonitor


def main() -> int:
    root, name, steps, delay, port, release = sys.argv[1:7]
    n = int(steps)
    run = Run.create(root, name, config={"steps": n})
    run.add_exporter(PrometheusExporter(port=int(port)))
    monitor = TrainingMonitor(range(n), run=run, file=io.StringIO(), mininterval=0.1)
    for i in monitor:
        monitor.log({"loss": 1.0 / (i + 1), "acc": i / n})
        time.sleep(float(delay))
    monitor.close()
    print("done", flush=True)
    deadline = time.monotonic() + 120
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    run.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
