"""The dashboard's routers, one module per part: session, datasets, models, pipeline, review, users."""
