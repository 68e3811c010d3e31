"""Applications and server configuration that tests/e2e/test_servers.py runs under real servers."""
