"""The colourizing network and what it sees: architectures, the colour-classification head, hint planes.

Shared by training and by applying a model; it knows no flags.
"""
