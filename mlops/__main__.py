"""``python -m mlops``: see :mod:`mlops.cli`."""

import sys

if __name__ == "__main__":
    try:
        from mlops.cli import main
    except KeyboardInterrupt:  # Ctrl-C while Python imports mlops: nothing has started
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    main()
