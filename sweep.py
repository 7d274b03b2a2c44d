"""Paper-table sweeps. Not implemented yet: the sweep issue adds it."""

import sys

if __name__ == "__main__":
    sys.exit("sweep.py is not implemented yet; see the README's status section.")
