"""inkasso-gateway: a file-based integration gateway for collection cases to Kammarkollegiet."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("inkasso-gateway")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
