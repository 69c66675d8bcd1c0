"""``python -m genops_autoinstrument COMMAND …``: the launcher, from any interpreter that has GenOps."""

from genops_autoinstrument.launch.launcher import main

raise SystemExit(main())
