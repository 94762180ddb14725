"""The benchmark suite from a checkout: the same as `python -m rankconv.bench` (see its --help).

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py [--json bench.json]
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from rankconv.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
