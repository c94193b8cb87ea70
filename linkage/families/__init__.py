"""Family keys: adopter households, child-adopter links, sibling groups, mothers and babies."""
