"""The registry of named methods: every name builds a valid configuration, and unknown names are one error."""

import pytest

from ace_jax import methods
from ace_jax.errors import AceJaxError, SettingError


@pytest.mark.parametrize("name", sorted(methods.WORD))
def test_every_word_method_builds_its_settings(name):
    config = methods.word_config(name, corpus="text8")
    for field, value in methods.WORD[name].settings.items():
        assert getattr(config.game, field, getattr(config, field, None)) == value, field


def test_the_generators_reading_the_discriminator():
    forms = {name: methods.word_config(name).game for name in ("ace-tied", "ace-tied-pool", "ace-tied-kbgan")}
    assert {g.gen_tables for g in forms.values()} == {"discriminator"}
    assert [forms[n].generator for n in ("ace-tied", "ace-tied-pool", "ace-tied-kbgan")] == ["exact", "pool", "kbgan"]


@pytest.mark.parametrize("name", sorted(methods.S2NET))
def test_every_s2net_method_builds_its_settings(name):
    assert methods.s2net_config(name, data="stsb").game.sampler == methods.S2NET[name].settings["sampler"]


def test_an_unknown_method_names_the_flag():
    with pytest.raises(SettingError, match="unknown method 'nope'"):
        methods.lookup(methods.WORD, "nope")


def test_a_variant_is_a_method_with_settings_over_it():
    method, settings = methods.parse_variant("ace-tied-pool:gen_min_entropy=6;candidates=256;baseline=none")
    assert (method, settings) == ("ace-tied-pool", {"gen_min_entropy": 6, "candidates": 256, "baseline": "none"})
    config = methods.word_config(method, **settings)
    assert (config.game.gen_tables, config.game.candidates, config.game.baseline) == ("discriminator", 256, "none")
    assert methods.parse_variant("ns") == ("ns", {})
    assert methods.variant_folder("ace-tied:gen_temperature=4;lam=0.3") == "ace-tied--gen_temperature4-lam0.3"


@pytest.mark.parametrize("text, message", [("nope:lam=1", "unknown method 'nope'"),
                                            ("ace:lam", "'lam' in 'ace:lam' is not field=value")])
def test_a_bad_variant_is_one_error(text, message):
    with pytest.raises(AceJaxError, match=message):
        methods.parse_variant(text)
