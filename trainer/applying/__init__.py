"""Applying a trained model to people's photos: finding and reading them, colourizing at any size, hints,
the SavedModel's serving signatures and the web page's server."""
