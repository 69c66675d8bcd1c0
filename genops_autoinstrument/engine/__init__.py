"""The call lifecycle: recording one call, attribution, metrics, deferred completion, telemetry set-up."""
