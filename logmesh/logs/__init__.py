"""The log-management service: ingest, durable store, query, sinks, web UI."""
