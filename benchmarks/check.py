"""Section 4: `socialguard check` over a hundred thousand hosts."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

from common import VENV_BIN, median
from table import Row


# -- 7. bulk check ------------------------------------------------------------------------------
def bench_check(workdir: Path, runs: int) -> list[Row]:
    rng = random.Random(1)  # noqa: S311
    pool = ["www.facebook.com", "i.ytimg.com", "nhs.uk", "mail.google.com"]
    hosts = [
        rng.choice([*pool, f"cdn{i}.example.org", f"x{i}.tiktokv.com"]) for i in range(100_000)
    ]
    data = "\n".join(hosts) + "\n"
    (workdir / "policy.yaml").write_text("# embedded defaults\n")
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(  # noqa: S603
            [
                str(VENV_BIN / "socialguard"),
                "check",
                "--config",
                str(workdir / "policy.yaml"),
                "--json",
                "-",
            ],
            input=data,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=workdir,
        )
        walls.append(time.perf_counter() - started)
        if done.returncode != 0 or done.stdout.count("\n") != len(hosts):
            return [Row("7 check", "100,000 hosts", f"failed: {done.stderr[-200:]}")]
    return [
        Row(
            "7 check",
            "`socialguard check --json -` on 100,000 hosts (wall, start-up included)",
            f"median {median(walls):.2f} s of {runs} runs",
            "",
            "",
            "≤ 3 s",
        )
    ]
