"""``python -m wdtnopt``: the ``wdtnopt`` command line (the same as the installed script)."""
from .cli import main

if __name__ == "__main__":
    main()
