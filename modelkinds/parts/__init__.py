"""Pieces several model kinds share: preprocessing builders, tree arrays, TreeSHAP tables.

Not kinds themselves: :mod:`modelkinds` discovers kinds among its own modules only.
"""
