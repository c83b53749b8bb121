"""The one place the environment is read."""

from __future__ import annotations

import gc

import pytest

from model.errors import ConfigError
from stream import config


def test_undocumented_variable_is_refused():
    with pytest.raises(ConfigError, match="not a documented"):
        config.env("XORSTREAM_NO_SUCH_THING")


def test_env_int_names_the_variable_on_a_typo(monkeypatch):
    monkeypatch.setenv("XORSTREAM_PARTITIONS", "six")
    with pytest.raises(ConfigError, match="XORSTREAM_PARTITIONS='six'"):
        config.env_int("XORSTREAM_PARTITIONS", 6)


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freeze_startup_heap_hides_existing_objects(unfrozen, monkeypatch):
    monkeypatch.delenv("XORSTREAM_GC_FREEZE", raising=False)
    config.freeze_startup_heap()
    assert gc.get_freeze_count() > 1000  # at least the imported modules' objects


def test_freeze_startup_heap_can_be_turned_off(unfrozen, monkeypatch):
    monkeypatch.setenv("XORSTREAM_GC_FREEZE", "0")
    config.freeze_startup_heap()
    assert gc.get_freeze_count() == 0
