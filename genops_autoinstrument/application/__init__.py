"""The code API: what only the application knows, in a few functions.

``attribution`` (who a block's calls are for), ``track`` (units of work with rolled-up cost and
an optional cap), ``check`` (may this spend?), ``track_cost`` (costs that are not tokens),
``record_eval`` (quality next to cost) and ``instrument`` (the one-line start without the
launcher). All are importable from ``genops_autoinstrument`` itself, work the same under
``genops-run``, ``opentelemetry-instrument`` and in a plain interpreter, and are safe no-ops
with ``GENOPS_ENABLED=false``.
"""
