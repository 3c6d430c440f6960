"""The repository passes `ruff check` under the settings in pyproject.toml."""
import subprocess
import sys

import pytest
from programs import REPO


def test_ruff_check_passes():
    try:
        import ruff  # noqa: F401
    except ImportError:
        pytest.skip('ruff is not installed: pip install -e ".[test]"')
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
