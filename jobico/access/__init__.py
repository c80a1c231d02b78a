"""Who may act and what they prove: tokens and grants, ingest secrets, webhook signatures."""
