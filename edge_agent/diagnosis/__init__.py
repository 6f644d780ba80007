"""Picture quality diagnosis (视频质量诊断) for the edge agent: per-snapshot scores and verdicts,
references per camera and mode, and hysteresis so a single bad frame raises no alarm."""

from edge_agent.diagnosis.config import DiagnosisConfig
from edge_agent.diagnosis.decode import InvalidSnapshot, jpeg_dimensions
from edge_agent.diagnosis.quality import CHECKS, FAULTS, Diagnosis, diagnose_jpeg, diagnose_jpeg_dict
from edge_agent.diagnosis.reference import FrameState, Reference, ReferenceStore
from edge_agent.diagnosis.tracker import FaultTracker, TrackerUpdate

__all__ = [
    "CHECKS",
    "FAULTS",
    "Diagnosis",
    "DiagnosisConfig",
    "FaultTracker",
    "FrameState",
    "InvalidSnapshot",
    "Reference",
    "ReferenceStore",
    "TrackerUpdate",
    "diagnose_jpeg",
    "diagnose_jpeg_dict",
    "jpeg_dimensions",
]
