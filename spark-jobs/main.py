"""spark-submit main file: `spark-submit --py-files orders_cdc.zip main.py --batch-id ...`."""

from __future__ import annotations

import sys

from orders_cdc.job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
