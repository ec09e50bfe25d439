"""The review wing: what the pages and the CLI show about a data set.

``analysis`` (every detector over a workspace → one ranked, cached issue table), ``queue`` (what is left
to review), ``selection`` (chart selections → item ids, confusion matrix, colours), ``sources`` (per query
and site), ``figures`` (every plotly figure builder). Imports data, detect and model.
"""
