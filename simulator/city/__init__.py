"""A synthetic city — road graph, areas, key sites, cameras and checkpoints — deterministic by seed.

It is the outside world for the demo, the coverage tests and the benchmarks; it imports nothing
of the platform or the agent and speaks only the public wire shapes (docs/api.md).
"""

from simulator.city.generate import City, CityParams, generate_city

__all__ = ["City", "CityParams", "generate_city"]
