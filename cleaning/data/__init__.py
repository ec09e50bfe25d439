"""The data wing: the data set on disk and everything recorded about it.

``tree`` walks ``ROOT/<label>/<image>`` and checks labels; ``images`` decodes files safely; ``store`` is the
SQLite file (items, provenance, decisions, file journal, runs) and the only module that writes SQL;
``workspace`` ties a ROOT to its state folder and reconciles disk → store (``refresh``); ``files`` is the only
module that moves or copies image files (apply, export, recover); ``cache`` keeps arrays keyed by
fingerprints; ``demo`` prepares the bundled demo. Imports no other wing.
"""
