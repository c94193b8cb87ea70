"""Pseudonymisation at source: keys, keyed tokens, Bloom filters, bundles."""
