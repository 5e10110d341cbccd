"""Benchmark peers: the chapter's Node logs service and rsyslogd (see bench/ingest_peers.py)."""
