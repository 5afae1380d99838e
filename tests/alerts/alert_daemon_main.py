"""Runs the real Daemon with the keyword classifier and no sources: the process the
kill -9 test starts, kills and restarts. Usage: python alert_daemon_main.py CONFIG"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from alert_fakes import KeywordClassifier  # noqa: E402

from monitor.alerts.channels import build_channels  # noqa: E402
from monitor.cli_common import collect_secrets, setup_logging  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.daemon import Daemon  # noqa: E402
from monitor.store import Store  # noqa: E402

settings = load_settings(sys.argv[1])
setup_logging("INFO", collect_secrets(settings))
store = Store(settings.database_target)  # the SQLite file or the PostgreSQL URL
Daemon(settings, store, sources=[], classifier_factory=KeywordClassifier, channels=build_channels(settings)).run()
