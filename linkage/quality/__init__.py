"""Quality: evaluation against truth, and the linkage report."""
