"""policytag: tag Chinese science-popularization policy clauses by theme and measure type."""

__version__ = "0.1.0"
