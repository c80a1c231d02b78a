"""Execution records: their Parquet schema, and the recorder that writes and queries them."""
