"""cleaning: find and fix what is wrong with a folder-per-class image data set.

The library behind the Streamlit dashboard and the ``python -m cleaning`` CLI. It never imports
streamlit, so a notebook user can import it directly::

    from .data.workspace import Workspace
    ws = Workspace.open("data/animals")
    ws.refresh()
    ws.store.record([item_id], "relabel", label="cat")
"""

__version__ = "0.1.0"
