"""Entry point: ``streamlit run dashboard.py [-- ROOT]``.

Page config, the shared frame (which data set is open, undo/redo) and the navigation. With no ROOT the
app opens a writable copy of the bundled demo data set.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages._common import sidebar_frame

HERE = Path(__file__).resolve().parent

# (file, title, url path, icon, section)
PAGES = [
    ("pages/overview.py", "Overview", "overview", ":material/dashboard:", "Data set"),
    ("pages/scrape.py", "Scrape", "scrape", ":material/travel_explore:", "Data set"),
    ("pages/train.py", "Train", "train", ":material/model_training:", "Model"),
    ("pages/issues.py", "Issues", "issues", ":material/report:", "Review"),
    ("pages/grid.py", "Grid review", "grid", ":material/grid_view:", "Review"),
    ("pages/confusion.py", "Confusion matrix", "confusion", ":material/grid_on:", "Review"),
    ("pages/embedding.py", "Embedding", "embedding", ":material/scatter_plot:", "Review"),
    ("pages/sources.py", "Sources", "sources", ":material/link:", "Review"),
    ("pages/deleted.py", "Deleted", "deleted", ":material/restore_from_trash:", "Review"),
    ("pages/export.py", "Export", "export", ":material/output:", "Finish"),
    ("pages/history.py", "History", "history", ":material/history:", "Finish"),
]

st.set_page_config(page_title="Image data cleaning", page_icon="🧹", layout="wide")

sections: dict[str, list] = {}
for file, title, url, icon, section in PAGES:
    default = url == "overview"  # served at "/" (its own url_path is only reserved, never served)
    sections.setdefault(section, []).append(
        st.Page(file, title=title, url_path="home" if default else url, icon=icon, default=default))
# ... so "/overview" would answer "Page not found": the same file again under that name, hidden from the
# menu, makes the deep link work too.
sections["Data set"].append(st.Page("pages/overview.py", title="Overview", url_path="overview",
                                    visibility="hidden"))
nav = st.navigation(sections)
sidebar_frame()
nav.run()
