import pytest

from benchmark.errors import ConfigError, UnknownNameError
from benchmark.registry import Registry


def make_registry():
    reg = Registry("model")

    @reg.register("rf", inputs=("midi",), defaults={"n": 3})
    def rf(n=1, seed=None):
        """A forest."""
        return ("rf", n, seed)

    @reg.register("ridge")
    def ridge():
        return "ridge"

    return reg


def test_build_uses_defaults_and_drops_unset_options():
    reg = make_registry()
    assert reg.build("rf") == ("rf", 3, None)
    # None means "not set on the CLI": the entry's default must win.
    assert reg.build("rf", n=None, seed=4) == ("rf", 3, 4)
    assert reg.build("rf", n=7) == ("rf", 7, None)
    spec = reg.get("rf")
    assert spec.inputs == ("midi",) and spec.description == "A forest."


def test_unknown_name_suggests_close_matches():
    reg = make_registry()
    with pytest.raises(UnknownNameError, match=r"unknown model 'rff'; did you mean 'rf'\?"):
        reg.get("rff")
    with pytest.raises(UnknownNameError, match="known: rf, ridge"):
        reg.get("zzz")


def test_duplicate_registration_raises():
    reg = make_registry()
    with pytest.raises(ConfigError, match="registered twice"):
        reg.register("rf")(lambda: None)


def test_parse_list_dedups_and_checks():
    reg = make_registry()
    assert reg.parse_list("rf, ridge,rf") == ["rf", "ridge"]
    with pytest.raises(UnknownNameError, match="ridg"):
        reg.parse_list("rf,ridg")
    with pytest.raises(ConfigError, match="no model given"):
        reg.parse_list(" , ")
