"""`python -m decart_cli` runs the same entry point as the `decart` command."""

from decart_cli.app import main

if __name__ == "__main__":
    main()
