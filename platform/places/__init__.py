"""The city's map as registered: areas (city → district → station → grid), key sites, roads, phone fences."""
