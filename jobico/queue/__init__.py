"""The durable ordered queues of a tenant: the store, group commit, and local puts."""
