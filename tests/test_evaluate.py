"""eval.heldout files: refused when their metrics would collide, scored even when shorter than the context."""
from __future__ import annotations

import pytest

from stages.evaluate import heldout_paths, heldout_windows
from stages.lib.errors import UserError


class CharTokenizer:
    """One token per character; id 0 ends a document."""
    eot_id = 0

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]


def test_two_heldout_files_with_one_name_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "play.txt").write_text("text")
    paths = [str(tmp_path / "a/play.txt"), str(tmp_path / "b/play.txt")]
    with pytest.raises(UserError, match="heldout_play_bpb; rename one"):
        heldout_paths(paths)
    assert heldout_paths(paths[:1]) == [tmp_path / "a/play.txt"]
    with pytest.raises(UserError, match="which is not a file"):
        heldout_paths([str(tmp_path / "missing.txt")])


def test_a_heldout_file_shorter_than_the_context_is_one_shorter_window(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("Short text only.")  # 16 tokens + end-of-text
    windows = heldout_windows(path, CharTokenizer(), block_size=256)
    assert windows.n_windows == 1 and windows.block_size == 16
    x, y = windows.batch([0])
    assert x.shape == y.shape == (1, 16) and y[0, -1].item() == CharTokenizer.eot_id
    long = tmp_path / "long.txt"
    long.write_text("x" * 1000)
    assert heldout_windows(long, CharTokenizer(), block_size=256).block_size == 256


def test_an_empty_heldout_file_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="empty.txt is empty"):
        heldout_windows(tmp_path / "empty.txt", CharTokenizer(), block_size=8)
