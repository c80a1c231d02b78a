"""Running events: a lane's delivery protocol (`lane`), the executor's decisions about a leased
batch (`executor`), guest threads shared fairly between tenants (`guests`, `fairshare`), and how
many executors the backlog calls for (`autoscale`)."""
