import os
import sys

# Keras picks TensorFlow unless told otherwise; the test extra installs the torch CPU build.
os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(__file__))  # tests/reference.py and tests/oracles.py

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

ORACLE_FILES = ("_keras.py", "_torch.py")


def pytest_sessionfinish(session, exitstatus):
    """Oracle tests must run: a skipped one fails the run (CI relies on this)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = [r.nodeid for r in reporter.stats.get("skipped", []) if r.nodeid.split("::")[0].endswith(ORACLE_FILES)]
    if skipped:
        reporter.write_line(f"Oracle tests were skipped, which is not allowed: {skipped}", red=True)
        session.exitstatus = 1
