# Sourced by the bench scripts: sets `python` to the Python whose torch the peers use.
# $PYTHON if set, else the project's tool environment (.venv-tools, made by `make setup`),
# else python3 from PATH.
if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x .venv-tools/bin/python ]]; then
    python=.venv-tools/bin/python
else
    python=python3
fi
