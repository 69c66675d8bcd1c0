"""The call lifecycle and what it needs.

``call`` (the plugin-facing call object), ``runtime`` (the process's engine, ``begin_call``),
``engine`` (the lifecycle), ``attribution``, ``instruments``, ``deferred`` (work done off the
application's thread), ``telemetry`` (SDK set-up), ``summary`` and ``lifecycle`` (the ordered
fork and exit handlers).
"""
