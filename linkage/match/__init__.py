"""Linkage: model settings from the tokens present, training, prediction, clustering."""
