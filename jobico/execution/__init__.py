"""Running events: the executor's decisions, fair sharing of guest threads, autoscaling."""
