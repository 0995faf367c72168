"""Settings of the test run: config.settings with DEBUG on unless the environment says otherwise.

DEBUG is off by default (production); the tests run on the development defaults (embedded secret key and
Fernet key) that only DEBUG=true allows. Set in the environment before config.settings is read, so processes
that tests start inherit it too. tests/test_settings.py loads config.settings in clean subprocesses to check
what production start-up refuses.
"""

import os

os.environ.setdefault("DEBUG", "true")

from config.settings import *  # noqa: E402, F403
