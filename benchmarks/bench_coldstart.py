"""Cold start: how long importing each Lambda handler takes, against ``import boto3`` alone.

Each measurement is a fresh interpreter (``python -S -c``) that times one ``import_module`` with
``time.perf_counter``, so interpreter start-up is left out and nothing is shared between runs. Runs go round
robin over the targets (the handlers present in ``functions/`` and boto3), ``--repeat`` times each.

The child runs as close to Lambda as this machine allows:
- the interpreter is ``--python``: ``make bench-coldstart`` picks the runtime's version (3.12) when this
  machine has one, else the virtualenv's;
- its packages are exactly the layer's: ``--site`` is the locked runtime dependencies installed for that
  interpreter (``make bench-coldstart`` builds it with uv), put on ``PYTHONPATH`` behind ``functions/`` and
  ``src/``, and ``-S`` keeps any other site-packages out;
- the Lambda environment variables the libraries look at are set (``LAMBDA_TASK_ROOT``, the function name,
  the region), so Powertools' Tracer is enabled and patches what it patches in AWS, and X-Ray's recorder takes
  its Lambda path. (As in Lambda, the X-Ray SDK touches ``/tmp/.aws-xray/initialized``.)

Two conditions, each with its own boto3 baseline:
- **with bytecode**: compiled ``.pyc`` files exist (a private ``-X pycache_prefix`` is warmed once first);
- **without .pyc**: every module is compiled from source, as happens in Lambda when a layer ships no
  ``.pyc``: ``/opt`` is read-only, so they are never written (``make layer`` ships none today).

"Its libraries alone" imports, in a fresh interpreter, every module the handler's import loaded except our
own (``functions``, ``video_library``): the floor the handler cannot go below with these dependencies. The
difference is what our modules cost (their own code, model building, Tracer patching).

    python -m benchmarks.bench_coldstart --site build/bench-layer [--python python3.12] [--repeat 7] [--target 1.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ("piapi_webhook", "save_to_library", "save_worker", "purge", "sweep", "library_api", "reconcile")
BASELINE = "boto3"
OWN_PACKAGES = ("functions", "video_library")

# Runs in the child: import the target, print how long it took and which modules it loaded.
CHILD = """
import importlib, json, sys, time
names = json.loads(sys.argv[1])
before = set(sys.modules)
start = time.perf_counter()
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        if len(names) == 1:
            raise
elapsed = time.perf_counter() - start
print(json.dumps({"ms": elapsed * 1000, "loaded": [m for m in sys.modules if m not in before]}))
"""


@dataclass
class Target:
    label: str
    modules: list[str]
    runs: dict[str, list[float]] = field(default_factory=dict)

    def median(self, condition: str) -> float:
        return statistics.median(self.runs[condition])

    def best(self, condition: str) -> float:
        return min(self.runs[condition])


def lambda_environment(site: Path | None, pycache: Path | None) -> dict[str, str]:
    """The child's environment; ``pycache``: where bytecode is read and written (None: next to the sources)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    path = [str(ROOT), str(ROOT / "src")] + ([str(site)] if site else [])
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(path),
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LAMBDA_FUNCTION_NAME": "video-library-bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "video-library",
            "POWERTOOLS_METRICS_NAMESPACE": "VideoLibrary",
        }
    )
    return env


PYTHON = [sys.executable]


def measure(modules: list[str], env: dict[str, str], *, site: Path | None, bytecode: bool) -> dict[str, object]:
    flags = ["-S"] if site else []
    flags += [] if bytecode else ["-B"]
    result = subprocess.run(
        [*PYTHON, *flags, "-c", CHILD, json.dumps(modules)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing {modules[:1]} failed:\n{result.stderr[-3000:]}")
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def handler_targets() -> list[Target]:
    present = [name for name in HANDLERS if (ROOT / "functions" / name / "handler.py").is_file()]
    return [Target(f"functions/{name}/handler.py", [f"functions.{name}.handler"]) for name in present]


def libraries_of(target: Target, env: dict[str, str], site: Path | None) -> Target:
    """The modules ``target`` loads that are not ours, in the order they were loaded."""
    loaded = measure(target.modules, env, site=site, bytecode=True)["loaded"]
    assert isinstance(loaded, list)
    libraries = [name for name in loaded if name.split(".")[0] not in OWN_PACKAGES]
    return Target(f"{target.label}: its libraries alone", libraries)


def run(site: Path | None, repeat: int) -> tuple[Target, list[Target], dict[str, Target]]:
    baseline = Target(f"`import {BASELINE}`", [BASELINE])
    handlers = handler_targets()
    with tempfile.TemporaryDirectory(prefix="coldstart-pyc-") as cached:
        warm_env = lambda_environment(site, Path(cached))
        # Bytecode next to the sources, never written (-B): the interpreter's own library has its .pyc, as
        # Lambda's runtime does; the layer's packages (freshly installed, uncompiled) and ours have none.
        cold_env = lambda_environment(site, None)
        for target in [baseline, *handlers]:  # the first run compiles and writes the bytecode
            measure(target.modules, warm_env, site=site, bytecode=True)
        floors = {target.label: libraries_of(target, warm_env, site) for target in handlers}
        everything = [baseline, *handlers, *floors.values()]
        for _ in range(repeat):
            for target in everything:
                target.runs.setdefault("bytecode", []).append(
                    float(str(measure(target.modules, warm_env, site=site, bytecode=True)["ms"]))
                )
            for target in [baseline, *handlers]:
                target.runs.setdefault("source", []).append(
                    float(str(measure(target.modules, cold_env, site=site, bytecode=False)["ms"]))
                )
    return baseline, handlers, floors


def report(baseline: Target, handlers: list[Target], floors: dict[str, Target], target_ratio: float) -> str:
    base, base_src = baseline.median("bytecode"), baseline.median("source")
    lines = [
        f"| import | median (ms) | min (ms) | x boto3 | its libraries alone (ms) | without .pyc: median (ms) "
        f"| x boto3 | within {target_ratio:g}x |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| {baseline.label} | {base:.0f} | {baseline.best('bytecode'):.0f} | 1.00 | | {base_src:.0f} | 1.00 | |",
    ]
    for target in handlers:
        ratio = target.median("bytecode") / base
        floor = floors[target.label].median("bytecode")
        lines.append(
            f"| `{target.label}` | {target.median('bytecode'):.0f} | {target.best('bytecode'):.0f} | {ratio:.2f} "
            f"| {floor:.0f} | {target.median('source'):.0f} | {target.median('source') / base_src:.2f} "
            f"| {'yes' if ratio <= target_ratio else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import time of each handler against `import boto3`.")
    parser.add_argument("--site", type=Path, help="the layer's packages for this machine (make bench-coldstart)")
    parser.add_argument("--python", help="the interpreter to measure (default: this one); --site must match it")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--target", type=float, default=1.5, help="acceptable ratio to boto3's import time")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a handler misses the target")
    args = parser.parse_args(argv)
    if args.site is None:
        print("no --site: measuring against the development virtualenv, which holds more than the layer")
    elif not (args.site / "boto3").is_dir():
        parser.error(f"{args.site} does not hold the layer's packages (make bench-coldstart builds it)")
    if args.python:
        PYTHON[:] = [args.python]
    version = subprocess.run(
        [*PYTHON, "-c", "import platform; print(platform.python_version(), platform.machine())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    baseline, handlers, floors = run(args.site, args.repeat)
    print(f"\nCold start, Python {version}, {args.repeat} fresh interpreters per cell\n")
    print(report(baseline, handlers, floors, args.target))
    missed = [t.label for t in handlers if t.median("bytecode") / baseline.median("bytecode") > args.target]
    if missed:
        print(f"\nover {args.target:g}x boto3: {', '.join(missed)}")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
