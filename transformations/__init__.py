"""The dbt project that turns events into feature marts, shipped as package data.

Only `PROJECT_DIR` is Python: `pipelines.transform` runs dbt on this folder, wherever
Tailor is installed.
"""

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
