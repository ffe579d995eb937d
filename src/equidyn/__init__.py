"""equidyn: how imposed equivariance (strict, relaxed, none) changes what a network learns and how it trains.

The package holds all logic of the pipeline; the Snakemake rules only call the ``equidyn`` command line.
"""

__version__ = "0.1.0"
