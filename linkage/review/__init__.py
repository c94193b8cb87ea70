"""Clerical review: the page of pairs near the threshold, and the decisions that come back."""
