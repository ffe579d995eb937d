"""Models: the 2-D smoke and tutorial models, the 3-D super-resolution models, and the registry that builds them.

Importing this package imports nothing heavy; :func:`equidyn.models.registry.build_model` imports the declared
model modules (torch, escnn) when a model is first built.
"""
