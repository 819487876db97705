"""The bench suite of issue 9: ``python -m bench`` (see ``bench/__main__.py``)."""
