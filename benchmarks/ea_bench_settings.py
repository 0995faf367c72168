"""Settings for the EA benchmarks: the project's settings plus a URLconf with the bare baseline endpoints."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "ea_bench_urls"
