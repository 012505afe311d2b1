"""Datasets and loaders: XOR, digits, optdigits, binary patterns, and their phase or detuning encodings."""
