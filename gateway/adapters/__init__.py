"""Adapters to the outside world: sources and transports (folder, SFTP)."""
