"""Figures (matplotlib, Agg backend): PNG or SVG by the output file's extension."""
