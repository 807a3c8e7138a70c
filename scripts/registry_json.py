"""The model registry (`df_models::registry()`), as `summary --list --json` prints it.

The fixture scripts, `scripts/model_flops.py` and `benches/peers/models_torch.py` take
their model lists from here instead of keeping their own:

    cargo run --example summary -- --list --json > fixtures/generated/models.json

`scripts/make-fixtures.sh` writes that file and passes it as `DF_MODELS_JSON`; without
the variable, `fixtures/generated/models.json` of the repository is read. Each row has
`name`, `family`, `keras_application` (the `keras.applications` constructor, or `null`),
`input_size`, `min_input_size`, `preprocessing`, `keras_params`, `default_top`,
`study_recipe` and `gradcam_layer`.
"""

import json
import os
import sys

ENV = "DF_MODELS_JSON"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = os.path.join(ROOT, "fixtures", "generated", "models.json")
MAKE = "cargo run --example summary -- --list --json > fixtures/generated/models.json"
FIELDS = ("name", "family", "keras_application", "input_size", "min_input_size",
          "gradcam_layer")


def path():
    return os.environ.get(ENV) or DEFAULT


def load():
    """The registry's rows, in registry order; exits with a message naming the file when
    it is absent or not the registry's JSON."""
    p = path()
    if not os.path.isfile(p):
        sys.exit(f"error: the model registry {p} is missing ({ENV} "
                 f"{'= ' + os.environ[ENV] if ENV in os.environ else 'unset'}); "
                 f"make it with `{MAKE}` (scripts/make-fixtures.sh does)")
    try:
        with open(p) as f:
            rows = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"error: the model registry {p} is unreadable: {e}; remake it with `{MAKE}`")
    if not isinstance(rows, list) or not rows or not all(
            isinstance(r, dict) and all(k in r for k in FIELDS) for r in rows):
        sys.exit(f"error: {p} is not `summary --list --json`'s output (a list of models with "
                 f"{', '.join(FIELDS)}); remake it with `{MAKE}`")
    return rows


def names():
    return [r["name"] for r in load()]
