"""The durable ordered queues of a tenant: the store and its parts, group commit, and local
puts."""
