"""Reproduce the shipped classifier: python models/train.py --data ../shared/datasets

Same as `monitor model train`. Prints progress; writes a checkpoint per epoch.
"""

import sys

from monitor.cli import main

if __name__ == "__main__":
    sys.exit(main(["model", "train", *sys.argv[1:]]))
