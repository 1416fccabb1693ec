"""The results schema, the Parquet store and the manifest."""

from .store import COLUMNS, load_manifest, load_results, write_run

__all__ = ["COLUMNS", "load_results", "load_manifest", "write_run"]
