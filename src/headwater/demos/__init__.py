"""Demos: real data through the real system, on the embedded backends.

- :mod:`headwater.demos.elec2`: the Elec2 stream as a live stream, four training
  strategies compared on the same predictions.
"""
