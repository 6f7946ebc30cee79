"""The calibration callback's policy parameters come from the policies' declarations: an
option per declared parameter (a plugin's too) with the declared default, each value checked
where it enters, and configs that set the built-in ones by name keep working."""

import importlib

import pytest
from jsonargparse import ActionConfigFile
from lightning.pytorch.cli import LightningArgumentParser

from window_cascades.cascade.policy_parameters import PolicySettings, declared_parameters
from window_cascades.cascade.policy_registry import policy_names, unregister_policy
from window_cascades.lightning_modules.callbacks.cascade_calibration import (
    CascadeCalibration,
    add_policy_parameter_arguments,
)


@pytest.fixture
def lowest_share():
    """The one-file policy of ``tests/policy_with_parameter.py``, registered for one test."""
    import tests.policy_with_parameter as plugin

    if "lowest_share" not in policy_names():
        importlib.reload(plugin)
    yield plugin
    unregister_policy("lowest_share")


def calibration_parser() -> LightningArgumentParser:
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_lightning_class_args(CascadeCalibration, "calibration")
    add_policy_parameter_arguments(parser, "calibration")
    return parser


def built(parser: LightningArgumentParser, args: list[str]) -> CascadeCalibration:
    return parser.instantiate_classes(parser.parse_args(args)).calibration


def test_every_declared_parameter_is_an_option_with_its_declared_default(lowest_share):
    parser = calibration_parser()
    defaults = parser.parse_args([]).calibration
    for name, declared in declared_parameters().items():
        assert defaults[name] == declared.default, name
    assert defaults["top_share"] == 0.25  # the plugin's declaration
    # defaults stay with their declarations: the callback records only what was given
    callback = built(parser, ["--calibration.top_share", "0.4", "--calibration.width", "0.2"])
    assert callback.parameters == {"top_share": 0.4, "width": 0.2}
    settings = PolicySettings(**callback.parameters)
    assert settings.budget == declared_parameters()["budget"].default


def test_a_config_that_sets_parameters_by_name_still_works(tmp_path):
    config = tmp_path / "cascade.yaml"
    config.write_text(
        "calibration:\n  target: cov@5\n  width: 0.15\n  pass_fraction: 0.2\n"
        "  parameters: {budget: 1.5}\n"
    )
    callback = built(calibration_parser(), ["--config", str(config)])
    assert callback.parameters == {"width": 0.15, "budget": 1.5}


def test_values_are_checked_where_they_enter(lowest_share):
    assert CascadeCalibration(parameters={"top_share": 0.4}).parameters == {"top_share": 0.4}
    assert CascadeCalibration(top_share=0.4).parameters == {"top_share": 0.4}
    with pytest.raises(ValueError, match="top_share must be in"):
        CascadeCalibration(parameters={"top_share": 4})
    with pytest.raises(ValueError, match=r"window width w must be in \(0, 0.5\], got 0.7"):
        built(calibration_parser(), ["--calibration.width", "0.7"])
    with pytest.raises(ValueError, match="unknown policy parameter 'top_shar'"):
        CascadeCalibration(top_shar=0.4)
    with pytest.raises(ValueError, match="repeats named arguments \\['width'\\]"):
        CascadeCalibration(width=0.3, parameters={"width": 0.2})
