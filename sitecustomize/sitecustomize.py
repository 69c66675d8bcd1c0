"""GenOps AutoInstrument bootstrap.

``genops-run`` puts the folder holding this file (and nothing else) first on ``PYTHONPATH``, so
every Python process it starts, and their children, import it at start-up. It installs GenOps'
import hook, then runs the application's own ``sitecustomize`` if there is one, exactly once. An
error here is reported on one line and the application starts normally.
"""

import os
import sys


def _genops_bootstrap():
    try:
        from genops_autoinstrument.launch.bootstrap import run
    except ImportError as error:
        sys.stderr.write(
            "genops: warning: %s cannot import genops_autoinstrument (%s); running without instrumentation\n"
            % (sys.executable, error)
        )
    else:
        try:
            run()
        except Exception as error:
            sys.stderr.write("genops: warning: bootstrap failed (%r); running without instrumentation\n" % (error,))


def _chain_user_sitecustomize():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    own = sys.modules.pop("sitecustomize", None)
    try:
        __import__("sitecustomize")
    except ImportError as error:
        if getattr(error, "name", None) != "sitecustomize":
            sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n%s: %s\n" % (type(error).__name__, error))
        if "sitecustomize" not in sys.modules and own is not None:
            sys.modules["sitecustomize"] = own
    except Exception as error:
        # What site.py itself would print for a failing sitecustomize.
        sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n%s: %s\n" % (type(error).__name__, error))
        if "sitecustomize" not in sys.modules and own is not None:
            sys.modules["sitecustomize"] = own


_genops_bootstrap()
_chain_user_sitecustomize()
