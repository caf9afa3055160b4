"""The data sets mtkd can prepare without network, in the order the docs list them. Their
builders are `mtkd.data.builders` (TFDS); this module is light so the command line can name them."""

EMBEDDED_DATASETS: tuple[str, ...] = ("mnist1d", "digits")
