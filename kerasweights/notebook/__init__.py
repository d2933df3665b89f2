"""Rich display in Jupyter: the HTML behind ``Model._repr_html_``, ``Layer._repr_html_`` and
``Matrix._repr_html_`` (:mod:`.html`). Imported only when a notebook displays an object."""

from __future__ import annotations

from .html import layer_html, matrix_html, model_html

__all__ = ["layer_html", "matrix_html", "model_html"]
