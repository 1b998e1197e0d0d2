"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def python_blocks(after: str) -> list[str]:
    text = README.read_text()
    section = text[text.index(after) :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_own_code_examples_run(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks("## In your own code")
    assert len(blocks) == 2
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Unlearning report:" in printed
    history = namespace["tracked"].history  # type: ignore[attr-defined]
    distances = [step["distance"] for step in history]
    assert len(distances) == 40 and distances[-1] > distances[0] > 0
    unlearned = namespace["unlearned"]
    assert type(unlearned) is type(namespace["target"])


def test_splits_example_runs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    block = python_blocks("## The splits")[0]
    namespace: dict[str, object] = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "outputs" / "manifest.json").is_file()


def test_the_readme_table_has_the_columns_the_report_prints() -> None:
    import sys

    from lightning_unlearn.metrics import COLUMN_DEFINITIONS
    from lightning_unlearn.metrics.report import LIRA_COLUMN_DEFINITIONS

    sys.path.insert(0, str(README.parent / "tools"))
    from readme_report import comparable, readme_report  # the CI check's own parser

    block = readme_report(README.read_text())
    header = next(line for line in block.splitlines() if line.startswith("model "))
    columns = list(COLUMN_DEFINITIONS)
    at = columns.index("time s")
    # The main job runs LiRA by default: its two columns stand before the times.
    assert re.split(r"\s{2,}", header.strip()) == [*columns[:at], *LIRA_COLUMN_DEFINITIONS, *columns[at:]]
    assert len(comparable(block)) == len(block.splitlines())
    reading = README.read_text().split("How to read it", 1)[1].split("\n## ", 1)[0]
    for column in [*COLUMN_DEFINITIONS, *LIRA_COLUMN_DEFINITIONS]:  # every column is explained beside the table
        grouped = column in ("acc retain", "acc forget", "acc test", "LiRA AUC", "LiRA TPR@1%FPR")
        assert f"**{column}**" in reading or grouped, column
    assert "**acc retain / acc forget / acc test**" in reading
    assert "**LiRA AUC / LiRA TPR@1%FPR**" in reading
