"""Checkpoint folders (train/checkpoint.py): a new checkpoint replaces an old one, never a user's files."""

from __future__ import annotations

import os
import stat

import pytest

from tokfilter.errors import UserError
from tokfilter.model import GPT, GPTConfig
from tokfilter.train.checkpoint import check_target, load_model, save_checkpoint


@pytest.fixture(scope="module")
def model():
    return GPT(GPTConfig(vocab_size=64, seq_len=16, n_layer=1, d_model=16, n_head=2))


def test_a_checkpoint_replaces_a_checkpoint_with_the_usual_permissions(model, tmp_path):
    target = save_checkpoint(tmp_path / "ckpt", model)
    (target / "provenance.json").write_text("{}")  # what posthoc/ adds beside the weights
    save_checkpoint(target, model)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o777 & ~umask
    assert stat.S_IMODE(os.stat(target / "model.safetensors").st_mode) == 0o666 & ~umask
    assert load_model(target)[0].config.d_model == 16


def test_a_file_or_a_folder_of_other_files_is_never_replaced(model, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    with pytest.raises(UserError, match="is a file; a checkpoint is written as a folder"):
        save_checkpoint(precious, model)
    assert precious.read_text() == "mine"
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds files that are not a checkpoint \\(notes.txt\\)"):
        check_target(folder)
    with pytest.raises(UserError, match="refusing to replace it"):
        save_checkpoint(folder, model)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
