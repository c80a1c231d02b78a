"""The control plane, without Ray: the registry of packages and their revisions (`registry`),
who may act (`accounts`), what the control actor answers (`service`), and the reconcile that
brings pub/sub and the tenants' queues back in line with the registry after a restart
(`reconcile`)."""
