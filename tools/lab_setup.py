"""Set up a JupyterLab for the notebook series (``make lab`` runs it; run it with any JupyterLab's Python).

    python tools/lab_setup.py            # this Python's JupyterLab; trusts ../notebooks/*.ipynb

Two things make the stored explorers of the series render, and keep rendering after you save:

1. JupyterLab saves a notebook's widget state only with the setting "Save Jupyter widget state in
   notebooks" (``@jupyter-widgets/jupyterlab-manager:plugin``, ``saveState``), off by default. This
   script turns it on in the ``overrides.json`` of JupyterLab's application settings folder (the
   documented place for changed defaults; it merges with what is there, and a user's own setting
   still wins). Without it, a notebook saved in JupyterLab keeps old widget state with ids that no
   longer match its views, and every explorer shows "Error displaying widget: model not found".
2. A notebook opens untrusted on a fresh clone, and untrusted notebooks do not render stored widget
   views. Trust is kept in your local signature store (``jupyter trust``), never in the file; the
   script trusts every notebook of the series.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"


def settings_dir() -> Path:
    """JupyterLab's application settings folder (``<prefix>/share/jupyter/lab/settings``)."""
    from jupyterlab.labapp import LabApp

    return Path(LabApp().app_settings_dir)


def save_widget_state(folder: Path) -> Path:
    """Turn ``saveState`` on in ``folder/overrides.json``, keeping every other override."""
    path = folder / "overrides.json"
    overrides = json.loads(path.read_text()) if path.exists() else {}
    overrides.setdefault(PLUGIN, {})["saveState"] = True
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(overrides, indent=2) + "\n")
    return path


def trust(notebooks: list[Path]) -> None:
    """Sign the notebooks in this user's signature store (what ``jupyter trust`` does)."""
    subprocess.run([sys.executable, "-m", "jupyter", "trust", *map(str, notebooks)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings-dir", type=Path, help="application settings folder (default: JupyterLab's)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="folder of the series (default: notebooks/)")
    args = parser.parse_args(argv)
    path = save_widget_state(args.settings_dir or settings_dir())
    print(f"lab_setup.py: widget state is saved with notebooks ({path})")
    notebooks = sorted(args.notebooks.glob("[0-9][0-9]_*.ipynb"))
    trust(notebooks)
    print(f"lab_setup.py: {len(notebooks)} notebooks trusted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
