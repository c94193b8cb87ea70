"""Research extracts: requests, project pseudonyms, cohorts, tables and disclosure control."""
