"""``python -m olist_fast``."""

from olist_fast.cli import main

main()
