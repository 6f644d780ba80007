"""Vehicle checkpoints (卡口): sites, lanes, their cameras; later, pass-record ingest."""
