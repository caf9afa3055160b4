"""`EnvConfig` keeps the student's training in one `TrainConfig` (no second copy of its fields):
every path that builds an environment from a run's `TrainConfig` hands it over whole, so no
setting (weight decay was one) is dropped on the way."""

from __future__ import annotations

import dataclasses

import pytest

from mtkd.agents.joint import selector_env_config
from mtkd.agents.procedure import episodic_configs
from mtkd.agents.selector_config import SelectorConfig
from mtkd.envs import EnvConfig
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec
from mtkd.train_config import TrainConfig

RUN = TrainConfig(epochs=7, batch_size=32, learning_rate=3e-3, optimizer="adamw", weight_decay=0.01, alpha=0.4,
                  temperature=3.0)


def test_training_settings_live_in_train_only():
    names = [field.name for field in dataclasses.fields(EnvConfig)]
    assert "train" in names and not set(names) & {field.name for field in dataclasses.fields(TrainConfig)}
    config = EnvConfig(epochs=3, temperature=2.0)  # by name: they change `train`
    assert config.train == TrainConfig(epochs=3, temperature=2.0) and (config.epochs, config.temperature) == (3, 2.0)
    assert config.replace(weight_decay=0.5).train.weight_decay == 0.5
    assert config.replace(reward="val_acc_gain").train == config.train


def test_every_builder_hands_over_the_whole_train_config():
    joint = selector_env_config(ModelSpec("mlp"), RUN, SelectorConfig(), decisions_per_epoch=5)
    assert joint.train == RUN and joint.eval_every == 5
    episodic, _ = episodic_configs({"episode_epochs": 3}, ModelSpec("mlp"), RUN)
    assert episodic.train == RUN.replace(epochs=3)  # weight decay and optimizer included


def test_round_trip_and_typos():
    config = EnvConfig(student={"arch": "mlp", "options": {"widths": [8]}}, train=RUN, reward="val_acc_gain",
                       val_subset=100, per_example=True)
    assert EnvConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown environment option.*epoch\\b"):
        EnvConfig(epoch=3)
    with pytest.raises(ConfigError, match="unknown training option.*lr"):
        EnvConfig.from_dict({"train": {"lr": 0.1}})
    with pytest.raises(ConfigError, match="learning_rate must be > 0"):
        EnvConfig(learning_rate=0.0)
