"""The pictures' labels say what they show."""

from __future__ import annotations

from lightning_unlearn.plots import group_label


def test_a_subsampled_group_gives_its_true_size() -> None:
    assert group_label("forget", 300, 315) == "forget (315, 300 drawn)"
    assert group_label("members (retain)", 1200, 1200) == "members (retain) (1200)"
