"""``python -m olist_fast``."""

from olist_fast.entry import main

main()
