"""``fitted_cascade.json`` (``window_cascades.artifacts.fitted_file``): written and read back; an
earlier run's ``window.json`` still read, with a notice; bad files named."""

import json

import pytest

from window_cascades.artifacts.fitted_file import (
    FITTED_FILE,
    OLD_FITTED_FILE,
    read_fitted_cascade,
    write_fitted_cascade,
)
from window_cascades.cascade.builtin_policies import interval_policy
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.policies import ensemble_policy, single_policy


def fitted() -> FittedCascade:
    window = interval_policy("window", [{"lower": 0.4, "upper": 0.7, "tau": 0.55}], "cov@5,w=0.1")
    policies = {"single": single_policy(2), "ensemble": ensemble_policy(2), "window": window}
    return FittedCascade(policies, None, {"target": "cov@5", "score": "msp"})


def test_written_and_read_back_from_the_file_or_its_folder(tmp_path):
    path = write_fitted_cascade(tmp_path, fitted())
    assert path == tmp_path / FITTED_FILE
    for where in (path, tmp_path):
        back = read_fitted_cascade(where, members=2)
        assert back.to_dict() == fitted().to_dict()
        assert back.policies["window"].bounds.tolist() == [[0.4, 0.7]]


def test_an_earlier_runs_window_json_is_read_with_a_notice(tmp_path, capsys):
    (tmp_path / OLD_FITTED_FILE).write_text(json.dumps(fitted().to_dict()))
    assert read_fitted_cascade(tmp_path).to_dict() == fitted().to_dict()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"note: {tmp_path / OLD_FITTED_FILE} is the old name of {FITTED_FILE} "
        "(it holds every fitted policy); read as such"
    ]
    write_fitted_cascade(tmp_path, fitted())  # the new name wins, silently
    read_fitted_cascade(tmp_path)
    assert capsys.readouterr().err == ""


def test_missing_broken_or_forged_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no {FITTED_FILE} .or {OLD_FITTED_FILE}"):
        read_fitted_cascade(tmp_path)
    (tmp_path / FITTED_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=f"{FITTED_FILE}: not a readable fitted cascade"):
        read_fitted_cascade(tmp_path)
    forged = fitted().to_dict()
    forged["policies"]["window"]["bounds"] = [[0.9, 0.1]]
    (tmp_path / FITTED_FILE).write_text(json.dumps(forged))
    with pytest.raises(ValueError, match="policies.window.bounds"):
        read_fitted_cascade(tmp_path)
    for bounds, end in (([[1.5, 2]], 0), ([[-3, 5]], 0), ([[0.2, 5]], 1)):  # msp is in [0, 1]
        forged["policies"]["window"]["bounds"] = bounds
        (tmp_path / FITTED_FILE).write_text(json.dumps(forged))
        with pytest.raises(ValueError, match=rf"bounds\[0\]\[{end}\]' must be within \[0, 1\]"):
            read_fitted_cascade(tmp_path)
    with pytest.raises(ValueError):
        read_fitted_cascade(write_fitted_cascade(tmp_path, fitted()), members=3)
