"""Jobico on Ray: tenants' WebAssembly run for the events posted to their webhooks. The README's
code map ("The code") names every module; only `actors/` and `serve/` import Ray."""
