"""Figures: one consistent style, PDF + PNG, each with a lineage footer pointing at the table it plots."""
