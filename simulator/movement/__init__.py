"""The movement simulator: a synthetic population moving over the synthetic city for days, seen by
checkpoints, face cameras and phone fences with misses and noise, with the ground truth beside it.

It is the outside world: it imports nothing of the platform or the agent and speaks only the wire
shapes of docs/api.md. See docs/movement.md.
"""

from simulator.movement.model import PLATE_RE, MovementParams
from simulator.movement.simulate import Batch, Simulation, Truth, simulate_movement

__all__ = ["PLATE_RE", "Batch", "MovementParams", "Simulation", "Truth", "simulate_movement"]
