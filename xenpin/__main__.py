"""`python -m xenpin` entry point."""

from xenpin.cli import main

raise SystemExit(main())
