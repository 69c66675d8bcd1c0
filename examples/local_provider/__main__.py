"""`python -m examples.local_provider --port 0 --port-file /tmp/port`."""

from .server import main

raise SystemExit(main())
