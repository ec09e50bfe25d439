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
    ("pages/confusion.py", "Confusion matrix", "confusion", ":material/grid_on:", "Review"),
    ("pages/embedding.py", "Embedding", "embedding", ":material/scatter_plot:", "Review"),
    ("pages/sources.py", "Sources", "sources", ":material/link:", "Review"),
    ("pages/export.py", "Export", "export", ":material/output:", "Finish"),
    ("pages/history.py", "History", "history", ":material/history:", "Finish"),
]

st.set_page_config(page_title="Image data cleaning", page_icon="🧹", layout="wide")

sections: dict[str, list] = {}
for file, title, url, icon, section in PAGES:
    sections.setdefault(section, []).append(
        st.Page(file, title=title, url_path=url, icon=icon, default=(url == "overview")))
nav = st.navigation(sections)
sidebar_frame()
nav.run()
