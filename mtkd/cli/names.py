"""The names the registries hold, for `--help` texts.

The command modules import no JAX (so `mtkd --help` answers at once), and the registries live with
JAX code, so the help texts read these copies; `tests/test_cli_names.py` fails when a copy and its
registry differ. Names a plugin registers are usable too; they are not listed here.
"""

STRATEGIES = ("none", "uniform", "single:NAME", "best_single", "weighted[:w1,w2,...]", "confidence",
              "val_acc_weighted_confidence", "random[:p]", "ebkd", "ca_mkd", "ae_kd[:C_TOL]", "mmkd[:LR]",
              "mtkd_rl[:dynamic]", "rl")
LOSS_TERMS = ("ce", "kd", "dkd", "hint", "attention_transfer", "rkd_distance", "rkd_angle", "darkrank", "dist",
              "ca_mkd_feature")
# The CIFAR-100 zoo (mtkd.models.cifar) is listed too; its BatchNorm models are refused in training for now.
ARCHITECTURES = ("mlp", "cnn1d", "cnn2d", "resnet", "byot", "resnet8", "resnet14", "resnet20", "resnet32", "resnet44",
                 "resnet56", "resnet110", "resnet8x4", "resnet32x4", "ResNet50", "wrn_16_1", "wrn_16_2", "wrn_40_1",
                 "wrn_40_2", "vgg8", "vgg11", "vgg13", "vgg16", "vgg19", "mobile_half", "ShuffleV1", "ShuffleV2")
REWARDS = ("val_loss_gain", "val_acc_gain", "val_calibrated_loss_gain", "terminal_val_acc", "neg_train_loss")
POLICIES = ("logistic", "mlp", "teacher_logistic", "teacher_bias")
POPULATION_REWARDS = ("final_val_calibrated_loss", "final_val_accuracy")


def listed(names) -> str:
    return ", ".join(names)


__all__ = ["ARCHITECTURES", "LOSS_TERMS", "POLICIES", "POPULATION_REWARDS", "REWARDS", "STRATEGIES", "listed"]
