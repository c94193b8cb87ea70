"""The synthetic England generator (see synthetic.world)."""
