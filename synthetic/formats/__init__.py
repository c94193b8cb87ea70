"""Writers of each collection's real file format, and the truth behind every record written."""
