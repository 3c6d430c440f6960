"""Small helpers shared by the experiment entry points."""
import json
from pathlib import Path


def write_results(path: str, results: dict) -> None:
    """Writes a benchmark's results as JSON (creating the folder) and says where."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=1))
    print(f"wrote {path}")
