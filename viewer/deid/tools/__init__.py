"""Maintenance scripts that regenerate the data files of :mod:`viewer.deid`."""
