"""Which machine a measurement was taken on (CPU model, cores, OS), as a short fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class DeviceInfo:
    cpu_model: str
    logical_cores: int
    machine: str
    system: str

    @property
    def fingerprint(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "fingerprint": self.fingerprint}


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


@cache
def device_info() -> DeviceInfo:
    """This machine's description; the fingerprint keys every cached latency."""
    return DeviceInfo(
        cpu_model=_cpu_model(),
        logical_cores=os.cpu_count() or 1,
        machine=platform.machine(),
        system=platform.system(),
    )
