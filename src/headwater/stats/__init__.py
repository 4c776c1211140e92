"""Statistics that bandits and evaluation both decide with, on plain numbers.

- :class:`MixtureSPRT` (:mod:`~headwater.stats.sequential`): the mixture sequential
  probability ratio test of two means, safe to look at after every batch. The A/B tests
  of :mod:`headwater.evaluation` (:func:`~headwater.evaluation.ab.ab_test`) and of
  :mod:`headwater.bandits` (:class:`~headwater.bandits.SequentialTest`) both run it.

It imports nothing of Headwater but :mod:`headwater.errors`.
"""

from headwater.stats.sequential import MixtureSPRT, Moments, mixture_likelihood_ratio

__all__ = ["MixtureSPRT", "Moments", "mixture_likelihood_ratio"]
