"""The one exception the analysis raises for inputs it cannot use."""

from __future__ import annotations


class AnalysisError(ValueError):
    """A table or request the analysis cannot turn into evidence.

    It subclasses ``ValueError`` so callers that already treat bad input as a ``ValueError`` (the
    API maps those to 4xx) need no special case. Messages name the column, factor or
    configuration that is missing or unusable, so the user knows which runs to add.
    """
