"""Device-facing library of the edge agent: ONVIF client, snapshot fetch, WS-Discovery, typed errors."""
