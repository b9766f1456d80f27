"""The package version: a leaf module, so that run folders and the service record it
without importing the package root (which sits above every layer)."""

__version__ = "0.1.0"
