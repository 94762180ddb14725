import sys

from rankconv.cli import main

sys.exit(main())
