"""How long `catalog import` takes on a million-line list, and loading the file it writes.

Run: .venv/bin/python benchmarks/catalog_import.py [LINES]
Generates a hosts-format list in a temporary directory (with comments, duplicates, IP entries
and wildcards mixed in, as public lists have), imports it through the command line as a user
would, then loads the written catalogue the way the proxy does at start-up. Prints seconds.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from socialguard.cli.app import main
from socialguard.files.catalog_file import load_catalog

LIMIT_SECONDS = 30.0


def write_list(path: Path, lines: int) -> None:
    """A hosts file of `lines` lines: mostly unique names, some noise of every kind."""
    rng = random.Random(20261124)  # noqa: S311 - test data, not security
    words = ["ads", "cdn", "img", "media", "api", "static", "track", "pix", "edge", "m"]
    with path.open("w", encoding="utf-8") as out:
        out.write("# Title: generated benchmark list\n")
        for i in range(lines - 1):
            roll = i % 50
            if roll == 0:
                out.write(f"# section {i}\n")
            elif roll == 1:
                out.write("0.0.0.0 0.0.0.0\n")
            elif roll == 2:
                out.write(f"0.0.0.0 *.wild{i}.example\n")
            elif roll == 3:
                out.write("0.0.0.0 site1.bench-example.com\n")  # a repeat
            else:
                word = words[rng.randrange(len(words))]
                out.write(f"0.0.0.0 {word}{i}.bench{i % 997}.example\n")


def _empty_policy(folder: Path) -> Path:
    """A policy.yaml of defaults, so the run does not depend on the directory it starts in."""
    path = folder / "policy.yaml"
    path.write_text("# benchmark: embedded defaults\n", encoding="utf-8")
    return path


def main_() -> int:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "big-hosts.txt"
        target = Path(tmp) / "catalog-bench.yaml"
        write_list(source, lines)
        started = time.perf_counter()
        result = CliRunner().invoke(
            main,
            ["catalog", "import", str(source), "--category", "forums", "--service", "bench",
             "--out", str(target), "--config", str(_empty_policy(Path(tmp)))],
        )  # fmt: skip
        imported = time.perf_counter() - started
        if result.exit_code != 0:
            print(result.output, file=sys.stderr)
            return 1
        started = time.perf_counter()
        catalog, _ = load_catalog([target])
        loaded = time.perf_counter() - started
        kept = len(catalog.services["bench"].domains)
        print(f"catalog import: {lines:,} lines → {kept:,} domains in {imported:.1f} s")
        print(f"loading the written catalogue (as the proxy does): {loaded:.1f} s")
        verdict = "within" if imported < LIMIT_SECONDS else "OVER"
        print(f"{verdict} the {LIMIT_SECONDS:.0f} s limit for a million-line list")
        return 0 if imported < LIMIT_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main_())
