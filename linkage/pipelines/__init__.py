"""One pipeline module per verb orchestrates; storage modules (``linkage.spine``) only store."""
