"""Run a process with the CPU share and memory of a Lambda function of a given size (cgroups v1, as root).

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one full vCPU, so 256 MB is about 14 % of
a core. A benchmark on this machine's two free cores hides CPU-bound code; confined the same way, a copy is
measured as the deployed function would run it. The CPU quota is a CFS quota on one period
(``quota = period * MB / 1769``) and the memory limit is the function's size, so a copy that would be killed
on Lambda for its memory fails here too.

    with LambdaShare(256) as share:  # devtools.lambda_share
        subprocess.run(command, preexec_fn=share.enter)
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType

CGROUP_ROOT = Path("/sys/fs/cgroup")
FULL_CORE_MB = 1769
CFS_PERIOD_US = 100_000


class ConfinementUnavailable(RuntimeError):
    """This machine cannot confine a process (no cgroups v1 cpu/memory controllers, or not root)."""


def available() -> bool:
    return os.geteuid() == 0 and (CGROUP_ROOT / "cpu").is_dir() and (CGROUP_ROOT / "memory").is_dir()


class LambdaShare:
    """A pair of cgroups (cpu, memory) sized like a Lambda function of ``memory_mb``."""

    def __init__(self, memory_mb: int) -> None:
        if not available():
            raise ConfinementUnavailable("confining to a Lambda's share needs root and cgroups v1 (cpu, memory)")
        self.memory_mb = memory_mb
        name = f"video-library-{memory_mb}mb-{uuid.uuid4().hex[:8]}"
        self._cpu = CGROUP_ROOT / "cpu" / name
        self._memory = CGROUP_ROOT / "memory" / name

    @property
    def cpu_fraction(self) -> float:
        return self.memory_mb / FULL_CORE_MB

    def __enter__(self) -> LambdaShare:
        self._cpu.mkdir()
        self._memory.mkdir()
        (self._cpu / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        # Above 1,769 MB Lambda gives more than one vCPU (up to 6 at 10,240 MB): the quota may exceed a period.
        (self._cpu / "cpu.cfs_quota_us").write_text(str(int(CFS_PERIOD_US * self.cpu_fraction)))
        limit = str(self.memory_mb * 1024 * 1024)
        (self._memory / "memory.limit_in_bytes").write_text(limit)
        # No swap on these machines; where there is, the function's memory must not spill into it.
        swap_limit = self._memory / "memory.memsw.limit_in_bytes"
        if swap_limit.exists():
            swap_limit.write_text(limit)
        return self

    def enter(self) -> None:
        """Move the calling process into the groups (use as ``preexec_fn``: children inherit them)."""
        pid = str(os.getpid())
        (self._cpu / "cgroup.procs").write_text(pid)
        (self._memory / "cgroup.procs").write_text(pid)

    def add(self, pid: int) -> None:
        (self._cpu / "cgroup.procs").write_text(str(pid))
        (self._memory / "cgroup.procs").write_text(str(pid))

    def peak_memory_bytes(self) -> int:
        return int((self._memory / "memory.max_usage_in_bytes").read_text())

    def oom_killed(self) -> bool:
        return int((self._memory / "memory.failcnt").read_text()) > 0

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for group in (self._cpu, self._memory):
            # A group can only be removed once empty; its processes have exited by now.
            for leftover in (group / "cgroup.procs").read_text().split():
                os.kill(int(leftover), 9)
            group.rmdir()
