"""Shipped YAML configurations (default, gpu, tiny, ...)."""
