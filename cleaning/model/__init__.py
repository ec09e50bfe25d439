"""The model wing: pretrained backbone, embeddings, out-of-sample probabilities, training, runs, 2-D maps.

``backbone`` (offline EfficientNet-Lite0 weights), ``embed`` (N×D embeddings, cached by content),
``oos`` (out-of-sample ``pred_probs`` from cross-validated heads), ``train`` (the user's fastai
classifier), ``runs`` (recorded training runs, before/after), ``projection`` (UMAP / t-SNE). Imports the
data wing only.
"""
