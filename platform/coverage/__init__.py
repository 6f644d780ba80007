"""Coverage: geometric coverage of roads, key sites and grid cells, blind spots, checkpoint enclosure."""
