"""Settings for the EA benchmarks: the project's settings plus a URLconf with the bare baseline endpoints."""

import os

from config.settings import *  # noqa: F403

ROOT_URLCONF = "ea_bench_urls"
if os.environ.get("BENCH_HOOKS") == "ea_bench_hooks":  # ea_to_ea.py: the stand-in copy listener
    INSTALLED_APPS = [*INSTALLED_APPS, "ea_bench_hooks.StandInConfig"]  # noqa: F405
