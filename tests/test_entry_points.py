"""Entry points say what a user got wrong in one line and exit non-zero: no traceback unless asked (-v 1)."""
import pytest

from programs import run_module


@pytest.mark.parametrize("module, args, message", [
    ("experiments.train", ["--config=experiments/configs/train.py:smoke", "--config.keep_every=3"],
     "error: bad config: keep_every=3 must be 0 or a multiple of checkpoint_every=2"),
    ("experiments.serve", ["--workdir=/nonexistent/run"], "error: /nonexistent/run holds no config.json"),
    ("experiments.serve", ["--docs=/nonexistent/docs"], "error: --docs=/nonexistent/docs is not a folder of documents"),
    ("experiments.make_corpus", ["--config.num_train=-1"], "error: num_train=-1, num_eval=220: need counts >= 0"),
])
def test_an_expected_error_is_one_line_and_a_failing_exit(module, args, message, tmp_path):
    if module != "experiments.serve":
        args.append(f"--workdir={tmp_path}")
    proc = run_module(module, *args)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    verbose = run_module(module, *args, "-v", "1")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
