"""Attributes → music: one network definition, engines that run it, logit processors, the sampler."""
