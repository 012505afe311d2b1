"""Validation and test accuracy of the parameters an xy-mnist run starts from (before its first update): e.g. a trained
network fabricated with a spread (``init_spread``), before it trains in situ.

Usage (the run's options, as in a study file):
python studies/xy_mnist_start.py '{"hidden": "2000", "init_from": "studies/results/xy_mnist/mnist_h2000_grown.nc",
"init_spread": 0.1, "seed": 8, "method": "continuation"}'
Prints the accuracy (one random initial state per image, argmax sin(phi)) and the unconverged relaxations.
"""
import json
import sys

import numpy as np

from pyosc.data.datasets import accuracy
from pyosc.data.mnist import mnist_phase_datasets
from pyosc.engines import get_engine
from pyosc.engines.base import RelaxOptions
from pyosc.experiments import mnist
from pyosc.training.ep import predict_phases

config = mnist.Config(**json.loads(sys.argv[1]))
params, _ = mnist.initial_parameters(config)
_, validation, test = mnist_phase_datasets(validation=config.validation)
for name, data in (("validation", validation), ("test", test)):
    phi, converged = predict_phases(get_engine("jax"), params, config.network(), data.x, np.random.default_rng(0),
                                    RelaxOptions(method=config.method, tol=config.tol))
    print(f"{name}: {100 * float(accuracy(phi, data)):.2f} %, {np.sum(~converged)} of {converged.size} relaxations "
          f"unconverged")
