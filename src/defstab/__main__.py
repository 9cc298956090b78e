"""``python -m defstab`` (what ``torchrun -m defstab train ...`` starts in every process)."""

import sys

from defstab.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
