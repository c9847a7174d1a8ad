"""A training process for the dashboard test: logs a point to a run every 0.2 s until
``stop`` appears beside the run folder. Usage: live_writer.py ROOT NAME"""

import sys
import time
from pathlib import Path

from loopwise.record import Run

root, name = Path(sys.argv[1]), sys.argv[2]
with Run.create(root, name, flush_interval=0.05) as run:
    step = 0
    while not (root / "stop").exists() and step < 3000:
        step += 1
        run.log_scalars({"loss": 1.0 / step}, step=step)
        if step == 1:
            run.flush()
            print("started", flush=True)
        time.sleep(0.2)
