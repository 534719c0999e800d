"""Glue-style job scripts: resolved arguments -> init -> read -> transform -> write -> commit."""
