"""Studies: the glue between configs, data stores, training runs, measures and tables for each experiment.

Each function here is what one Snakemake rule calls through the ``equidyn`` command line.
"""
