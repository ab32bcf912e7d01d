"""Atomic writes (atomic.py): an output place that cannot be written is a one-line UserError and leaves nothing."""

from __future__ import annotations

import pytest

from tokfilter.atomic import check_writable, check_writable_dir, write_json
from tokfilter.errors import UserError


def test_a_folder_where_a_file_goes_and_a_file_where_a_folder_goes(tmp_path):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="adir: is a directory"):
        write_json(tmp_path / "adir", {"a": 1})
    with pytest.raises(UserError, match="afile is a file, so nothing can be written inside it"):
        write_json(tmp_path / "afile" / "out.json", {"a": 1})
    with pytest.raises(UserError, match="afile is a file, so nothing can be written inside it"):
        check_writable_dir(tmp_path / "afile" / "sub" / "out")
    with pytest.raises(UserError, match="is a file \\(expected a folder"):
        check_writable_dir(tmp_path / "afile")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]  # no temporaries, no folders made


def test_checks_pass_where_writing_works_and_create_nothing(tmp_path):
    assert check_writable(tmp_path / "new" / "out.json") == tmp_path / "new" / "out.json"
    assert check_writable_dir(tmp_path / "run" / "deeper") == tmp_path / "run" / "deeper"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]  # check_writable makes the parent it writes into
    write_json(tmp_path / "new" / "out.json", {"a": 1})
    assert (tmp_path / "new" / "out.json").read_text() == '{\n  "a": 1\n}\n'


def test_a_command_result_with_nan_stays_valid_json(tmp_path, capsys):
    import json

    from tokfilter.atomic import emit_json

    assert emit_json({"auroc": float("nan"), "curve": [1.0, float("inf")], "f1": 0.5}, tmp_path / "r.json") == 0
    printed = capsys.readouterr().out
    assert json.loads(printed, parse_constant=lambda c: pytest.fail(f"{c} in output")) == {
        "auroc": None, "curve": [1.0, None], "f1": 0.5}
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(printed)
