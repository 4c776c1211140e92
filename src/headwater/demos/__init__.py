"""Demos: real data through the real system, on the embedded backends.

- :mod:`headwater.demos.elec2`: the Elec2 stream as a live stream, four training
  strategies compared on the same predictions (``headwater demo``);
- :mod:`headwater.demos.ctr`: click-through with drifting tastes, natural labels and
  cold starts (``headwater demo ctr``);
- :mod:`headwater.demos.system`: the components both drive, wired on embedded backends;
- :mod:`headwater.demos.scorecard`: each strategy scored from its logged predictions.
"""

__all__: list[str] = []
