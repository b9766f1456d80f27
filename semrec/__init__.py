"""semrec: recommendations from what things mean and who did what."""
__version__ = "0.1.0"
