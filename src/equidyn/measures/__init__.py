"""Measures of trained models: equivariance error, Lie derivative, sharpness and Hessian spectra.

Each measure is generic over :class:`equidyn.models.base.FieldModel` and takes its group action from
:mod:`equidyn.symmetry`, so the same code serves the 2-D smoke models and the 3-D super-resolution models.
"""
