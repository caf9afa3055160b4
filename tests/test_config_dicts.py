"""Every config has `to_dict()` and `from_dict()`: the dict rebuilds an equal config, and a
misspelled key fails on construction, naming itself."""

import pytest

from mtkd.agents.config import AgentConfig
from mtkd.agents.selector_config import SelectorConfig
from mtkd.envs.config import EnvConfig
from mtkd.ablation.config import LossFamily, ablation_config_from_dict
from mtkd.ablation.sections import ByotSection, DmlSection
from mtkd.checkpoint_config import CheckpointConfig
from mtkd.distill.byot import ByotConfig
from mtkd.distill.loss_config import LossConfig
from mtkd.distributed import DistributedConfig
from mtkd.errors import MtkdError
from mtkd.models import ModelSpec
from mtkd.teachers.spec import PoolSpec, TeacherTraining, load_pool_spec
from mtkd.train_config import TrainConfig

KD = [{"loss": "ce", "weight": 0.3}, {"loss": "kd", "weight": 0.7, "temperature": 4}]

CONFIGS = {
    "TrainConfig": TrainConfig(epochs=3, weight_decay=0.1, optimizer="sgd"),
    "CheckpointConfig": CheckpointConfig(every_epochs=2, every_seconds=None),
    "ByotConfig": ByotConfig(kd_weight=0.5, temperature=2.0),
    "DistributedConfig": DistributedConfig("127.0.0.1:1234", 2, 1),
    "AgentConfig": AgentConfig(policy_arch="mlp", policy_options={"hidden": [8]}, episodes=4, same_start=False),
    "SelectorConfig": SelectorConfig(credit_every=2, per_example=True, init="all"),
    "EnvConfig": EnvConfig(epochs=3, reward="val_acc_gain", student={"arch": "mlp", "options": {"widths": [8]}}),
    "DmlSection": DmlSection.from_dict({"peers": ["mlp", {"arch": "cnn1d"}], "update": "simultaneous"}),
    "ByotSection": ByotSection.from_dict({"kd_weight": 0.4, "channels": [8, 16]}),
    "TeacherTraining": TeacherTraining(epochs=2, label_noise=0.2, class_permutation=[1, 0, 2], seed=3),
    "PoolSpec": load_pool_spec("mnist1d"),
    "LossConfig": LossConfig.from_dicts(KD),
    "LossFamily": LossFamily.from_dict({"name": "kd", "strategy": "confidence", "losses": KD}),
    "ModelSpec": ModelSpec("cnn1d", {"channels": [8, 8]}),
    "AblationConfig": ablation_config_from_dict({
        "seeds": 2, "strategies": ["none", "rl", "dml"], "devices": 1, "train": {"epochs": 4},
        "student": {"arch": "mlp", "options": {"widths": [16]}}, "dml": {"peers": 3}, "rl": {"credit_every": 2},
        "losses": KD, "families": [{"name": "kd", "losses": KD}]}),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_to_dict_then_from_dict_gives_the_config_back(name):
    config = CONFIGS[name]
    again = type(config).from_dict(config.to_dict())
    assert again == config
    assert again.to_dict() == config.to_dict()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_misspelled_key_fails_on_construction(name):
    config = CONFIGS[name]
    raw = {**config.to_dict(), "bogus_key": 1}
    with pytest.raises(MtkdError, match="bogus_key"):
        type(config).from_dict(raw)


def test_every_pool_spec_keeps_its_teachers_apart():
    pool = CONFIGS["PoolSpec"]
    assert isinstance(pool, PoolSpec) and len(pool.teachers) == 4
    assert PoolSpec.from_dict(pool.to_dict()).teachers[3].training.label_noise == pool.teachers[3].training.label_noise
