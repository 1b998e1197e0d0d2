"""Keep the README's comparison table equal to what the main job prints.

``python tools/readme_report.py`` runs the README's main job (``lightning-unlearn experiment``)
in a scratch folder, takes the report it prints, and:

* ``--write`` puts it into README.md between the ``main-job-report`` markers;
* ``--check`` (the default) fails, naming the first difference, when the README's block differs
  from the printed one in anything but the two time columns (``time s`` and ``speed-up`` vary
  from run to run on a shared machine).

CI runs ``--check`` on a fresh clone, so the README never shows figures the command no longer
prints.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- main-job-report:start -->", "<!-- main-job-report:end -->"
#: Columns whose values change from run to run; every other figure must match exactly.
TIMING_COLUMNS = ("time s", "speed-up")


def printed_report(extra: list[str]) -> str:
    """Run the main job and return the report block it prints (table, oracle lines, verdicts, notes)."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            sys.executable,
            "-m",
            "lightning_unlearn.cli",
            "experiment",
            f"--output_dir={scratch}/out",
            f"--cache_dir={scratch}/cache",
            *extra,
        ]
        done = subprocess.run(command, cwd=scratch, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"readme_report: the main job failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    lines = done.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Unlearning report:")), None)
    if start is None:
        raise SystemExit("readme_report: the main job printed no 'Unlearning report:' block.")
    ends = (i for i in range(start, len(lines)) if lines[i].startswith("wrote ") or not lines[i].strip())
    end = next(ends, len(lines))
    return "\n".join(lines[start:end])


def readme_report(text: str) -> str:
    """The block between the markers in the README."""
    if START not in text or END not in text:
        raise SystemExit(f"readme_report: README.md lacks the markers {START} … {END}.")
    block = text.split(START, 1)[1].split(END, 1)[0]
    return block.strip().removeprefix("```text").removesuffix("```").strip()


def comparable(block: str) -> list[list[str]]:
    """The block as rows of cells, without the timing columns (cells are separated by 2+ spaces)."""
    lines = block.splitlines()
    header_index = next(i for i, line in enumerate(lines) if line.startswith("model "))
    header = re.split(r"\s{2,}", lines[header_index].strip())
    dropped = {header.index(name) for name in TIMING_COLUMNS if name in header}
    rows = []
    for position, line in enumerate(lines):
        cells = re.split(r"\s{2,}", line.strip())
        in_table = position >= header_index and len(cells) == len(header)
        rows.append([cell for i, cell in enumerate(cells) if not (in_table and i in dropped)])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="Write the printed report into README.md.")
    mode.add_argument("--check", action="store_true", help="Fail when README.md differs (the default).")
    args, extra = parser.parse_known_args(argv)
    printed = printed_report(extra)
    text = README.read_text()
    if args.write:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        README.write_text(f"{before}{START}\n```text\n{printed}\n```\n{END}{after}")
        print(f"readme_report: wrote {len(printed.splitlines())} lines into {README.name}")
        return 0
    documented = comparable(readme_report(text))
    current = comparable(printed)
    for number, (old, new) in enumerate(zip(documented, current), start=1):
        if old != new:
            print(f"readme_report: README.md line {number} of the report differs from what the main job prints:")
            print(f"  README:  {'  '.join(old)}")
            print(f"  printed: {'  '.join(new)}")
            print("Run `python tools/readme_report.py --write` and commit the README.")
            return 1
    if len(documented) != len(current):
        print(f"readme_report: README.md holds {len(documented)} report lines, the main job prints {len(current)}.")
        return 1
    print("readme_report: README.md matches the main job's report (time columns aside).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
