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
ARCHITECTURES = ("mlp", "cnn1d", "cnn2d", "resnet", "byot")
REWARDS = ("val_loss_gain", "val_acc_gain", "val_calibrated_loss_gain", "terminal_val_acc", "neg_train_loss")
POLICIES = ("logistic", "mlp", "teacher_logistic", "teacher_bias")
POPULATION_REWARDS = ("final_val_calibrated_loss", "final_val_accuracy")


def listed(names) -> str:
    return ", ".join(names)


__all__ = ["ARCHITECTURES", "LOSS_TERMS", "POLICIES", "POPULATION_REWARDS", "REWARDS", "STRATEGIES", "listed"]
