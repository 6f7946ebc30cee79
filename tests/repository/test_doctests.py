"""Every ``>>>`` example of the library runs and shows what it says: the public API's
(``window_cascades``, ``window_cascades.api``) and every other module's that has one.

Modules are imported by their installed names (``window_cascades.cascade.x``); pytest's
``--doctest-modules`` on the folders would import them under the folder names. Each module's
examples run in an empty folder of their own; the API's ``load_cascade`` example finds there a
small synthetic ``outputs/quickstart/results/cascade.ckpt`` (``tests/synthetic_cascade.py``),
where the quick start writes the real one.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from tests.repository.test_layers import library_sources
from tests.synthetic_cascade import write_cascade_checkpoint

QUICKSTART_CASCADE = Path("outputs/quickstart/results/cascade.ckpt")


def modules_with_examples() -> list[str]:
    """The library's modules whose source holds a ``>>>`` example, by installed name."""
    return sorted(name for name, text in library_sources().items() if ">>>" in text)


def test_the_public_api_and_the_registries_have_examples():
    found = set(modules_with_examples())
    assert {
        "window_cascades.api",
        "window_cascades.cascade.policy_registry",
        "window_cascades.cascade.metric_registry",
        "window_cascades.commands.plugins",
    } <= found


def test_every_public_api_call_has_an_example():
    import window_cascades
    from window_cascades import api

    names = [n for n in window_cascades.__all__ if n != "__version__"]
    assert names == api.__all__
    missing = [n for n in names if ">>>" not in (getattr(api, n).__doc__ or "")]
    assert missing == []


@pytest.mark.parametrize("name", modules_with_examples())
def test_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    if name == "window_cascades.api":
        write_cascade_checkpoint(tmp_path / QUICKSTART_CASCADE)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(module, name)
    assert tests, f"{name}: no examples found"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0, f"{name}: {result}"
