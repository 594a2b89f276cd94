"""A function outside scikit-learn and numpy, for the untrusted-type test."""


def double(x):
    return x * 2
