"""Allows `python -m toonvision ...`."""

from toonvision.cli import main

raise SystemExit(main())
