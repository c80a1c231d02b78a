"""The durable ordered queues of a tenant: the store and its parts, group commit, the service
its queue actor runs, and local puts."""
