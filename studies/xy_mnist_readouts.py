"""Readouts of a trained xy-mnist network compared on the 10,000 test images (issue 18).

* ``sin``: the trained readout, argmax over the 10 output units of sin(phi) at the free equilibrium reached from one
  random initial state (what the training history reports);
* ``vote M``: a softer readout over the network's multistability: argmax of sin(phi) averaged over the equilibria
  reached from M random initial states of the same image (the hardware analogue: M relaxations, outputs averaged).

Usage: python studies/xy_mnist_readouts.py studies/results/xy_mnist/mnist_h1000_shift1_finetune.nc [M ...]
(default M: 1 3 5)
Prints one line per readout with its test accuracy and the share of unconverged relaxations.
"""
import sys
import time

import numpy as np

from pyosc import topology
from pyosc.data.mnist import mnist_phase_datasets
from pyosc.engines import get_engine
from pyosc.engines.base import RelaxOptions
from pyosc.experiments.mnist import final_parameters
from pyosc.results import read_netcdf
from pyosc.training.ep import predict_phases

ds = read_netcdf(sys.argv[1])
inits = [int(m) for m in sys.argv[2:]] or [1, 3, 5]
config = ds.attrs["config"]
topo = topology.from_spec(ds.attrs["topology"], n_inputs=784, n_outputs=10)
params = final_parameters(ds)
test = mnist_phase_datasets(validation=config["validation"])[2]
options = RelaxOptions(method=config["method"], tol=config["tol"])
engine = get_engine("jax")
rng = np.random.default_rng(2026)
chunks = np.array_split(np.arange(test.x.shape[0]), 20)
t = time.perf_counter()
parts = [predict_phases(engine, params, topo, test.x[i], rng, options, n_inits=max(inits)) for i in chunks]
phi = np.concatenate([p[0] for p in parts])  # (10000, M, 10)
converged = np.concatenate([p[1] for p in parts])
print(f"{ds.attrs['topology']}: {max(inits)} relaxations per test image in {time.perf_counter() - t:.0f} s, "
      f"{100 * np.mean(~converged):.3f} % unconverged")
single = np.mean(np.argmax(np.sin(phi), axis=-1) == test.labels[:, None])
print(f"sin, one initial state (mean over the {max(inits)} draws): {100 * single:.2f} %")
for m in inits:
    vote = np.argmax(np.sin(phi[:, :m]).mean(axis=1), axis=-1)
    print(f"vote over {m} initial states: {100 * np.mean(vote == test.labels):.2f} %")
