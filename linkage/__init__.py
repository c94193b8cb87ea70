"""linkage: privacy-preserving record linkage for children's social care data in England."""

__version__ = "0.1.0"
