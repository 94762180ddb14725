"""The core issue's forward benchmark: `ops.conv` against PyTorch on the seed's Conv1D, a Kim text-CNN
Conv1D (k=5), a 3×3 image Conv2D and a 3×3×3 volume Conv3D — median forward time, ratio, GFLOP/s,
peak memory, and rankconv's workspace against the bound input + 2 × output.

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_forward.py [--repeats 9] [--json f.json]

Extra arguments go to `python -m rankconv.bench` (see its --help).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from rankconv.bench import main  # noqa: E402

CASES = "seed Conv1D,Kim Conv1D 64x300 k5,Conv2D 3x3 32x32,Conv3D 3x3x3"

if __name__ == "__main__":
    sys.exit(main(["--forward-only", "--cases", CASES, *sys.argv[1:]]))
