"""The dashboard (``visionloop ui``): server-rendered pages over the same service functions as the CLI.

Install the ``ui`` extra. :func:`visionloop.ui.app.create_app` builds the FastAPI app.
"""
