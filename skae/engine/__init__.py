"""The PyTorch side of skae.

Nothing in this package imports scikit-learn: it receives tensors and plain
Python values from :mod:`skae._base` and returns trained modules and a history.
"""
