"""Imported by tests/test_step_process.py to see when `pipelines.step_process.Preload` imports."""

import time

time.sleep(0.2)  # long enough that an import still running when `wait()` returns would be seen
DONE = True  # set last: seen only once the import has run to its end
