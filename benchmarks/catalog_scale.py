"""Section 2: loading a million-domain catalogue, its time and memory, in a child process."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from pathlib import Path

from common import BENCH, rss_kib
from decide import synthetic_domains
from table import Row


# -- 2. catalogue scale (in a child process, so RSS is its own) ----------------------------------
def write_catalog(path: Path, count: int) -> None:
    """An extra catalogue file as `catalog import` writes one: one service, many domains."""
    with path.open("w", encoding="utf-8") as out:
        out.write("version: 1\nservices:\n  bench-imported:\n    name: Benchmark list\n")
        out.write("    category: forums\n    domains: |\n")  # one a line, as import writes
        out.writelines(f"      {d}\n" for d in synthetic_domains(count, 1))


def child_catalog_load(path: str) -> None:
    """Run in a child: RSS before and after loading the catalogue, and the time it took."""
    from socialguard.core.policy import digest_of  # noqa: PLC0415
    from socialguard.files.catalog_file import load_catalog  # noqa: PLC0415

    gc.collect()
    before = rss_kib()
    started = time.perf_counter()
    catalog, raws = load_catalog([Path(path)])
    # As load_policy does: the files' bytes are hashed into the policy digest, then let go
    # (holding them here counted 36 MiB of file text the proxy never keeps).
    digest_of(raws)
    del raws
    loaded = time.perf_counter() - started
    gc.collect()
    after = rss_kib()
    started = time.perf_counter()
    catalog.build_index()
    indexed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": loaded,
                "index_seconds": indexed,
                "rss_before_mib": before / 1024,
                "rss_after_mib": after / 1024,
                "entries": len(catalog.index),
            }
        )
    )


def bench_catalog_scale(count: int, workdir: Path) -> list[Row]:
    path = workdir / "catalog-big.yaml"
    write_catalog(path, count)
    try:
        done = subprocess.run(  # noqa: S603
            [sys.executable, str(BENCH / "run.py"), "--child-catalog-load", str(path)],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            cwd=workdir,
        )
    except subprocess.TimeoutExpired:
        return [
            Row("2 catalogue", f"load {count:,} domains", "gave up after 240 s", "", "", "≤ 3 s")
        ]
    if done.returncode != 0:
        return [Row("2 catalogue", f"load {count:,} domains", f"failed: {done.stderr[-200:]}")]
    r = json.loads(done.stdout.strip().splitlines()[-1])
    grown = r["rss_after_mib"] - r["rss_before_mib"]
    return [
        Row(
            "2 catalogue",
            f"load a {count:,}-domain extra catalogue (YAML, as `catalog import` writes)",
            f"{r['seconds']:.2f} s · +{grown:.0f} MiB RSS (empty process "
            f"{r['rss_before_mib']:.0f} MiB) · {r['entries']:,} index entries",
            "",
            "",
            "≤ 3 s; ≤ 150 MB",
        ),
        Row(
            "2 catalogue",
            f"of which: building the suffix index alone ({count:,} domains)",
            f"{r['index_seconds']:.2f} s",
        ),
    ]
