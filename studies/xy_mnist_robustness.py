"""How much hardware imprecision a trained xy-mnist network tolerates, on the MNIST test images.

The stored final parameters are perturbed as a fabricated oscillator network would be, then each test image relaxes
from one random initial state and is read out as in training (argmax sin(phi) of the outputs):

* ``spread S``: ``CHIPS`` fabricated chips, on each every coupling and bias amplitude off by a random factor,
  W_ij -> W_ij (1 + S xi_ij) (xi_ij = xi_ji standard normal, one draw per pair) and h_i -> h_i (1 + S xi_i); bias
  phases exact (:func:`pyosc.models.xy.with_spread`; chip k is the draw of ``pyosc train mnist --init-spread S
  --seed k``);
* ``B bits``: couplings and bias amplitudes set to B-bit signed levels, as digital-to-analogue converters with B bits
  would set them: the couplings between two layers multiples of their max|W_ij| / (2^(B-1) - 1), each layer's bias
  amplitudes multiples of its max|h_i| / (2^(B-1) - 1); bias phases exact.

Usage: python studies/xy_mnist_robustness.py studies/results/xy_mnist/mnist_h2000_grown.nc [N_TEST]
(N_TEST: the first N test images, default all 10,000). Prints one line per perturbation (test accuracy, the share
of unconverged relaxations and seconds), the chips' mean, spread and range per S; draws both curves in
``<history>_robustness.png`` beside the history.
"""
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pyosc import topology
from pyosc.data.datasets import accuracy
from pyosc.data.mnist import mnist_phase_datasets
from pyosc.engines import get_engine
from pyosc.engines.base import RelaxOptions
from pyosc.experiments.mnist import final_parameters
from pyosc.models import xy
from pyosc.results import read_netcdf
from pyosc.training.ep import predict_phases

SPREADS = (0.01, 0.03, 0.1, 0.3)
CHIPS = 5
BITS = (12, 10, 8, 6, 4)


def quantised(params: dict, bits: int, layers: tuple[int, ...]) -> dict:
    """Each block of couplings between two layers, and each layer's biases, on its own B-bit scale."""
    def levels(a):
        step = max(np.max(np.abs(a)), 1e-300) / (2 ** (bits - 1) - 1)
        return np.round(a / step) * step

    W, h = params["W"].copy(), params["h"].copy()
    edges = np.cumsum((0,) + layers)
    for a, b, c in zip(edges[:-2], edges[1:-1], edges[2:]):
        W[a:b, b:c] = levels(W[a:b, b:c])
        W[b:c, a:b] = W[a:b, b:c].T
        h[b:c] = levels(h[b:c])
    return {**params, "W": W, "h": h}


ds = read_netcdf(sys.argv[1])
config = ds.attrs["config"]
topo = topology.from_spec(ds.attrs["topology"], n_inputs=784, n_outputs=10)
params = final_parameters(ds)
test = mnist_phase_datasets(validation=config["validation"])[2].first(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
n = test.x.shape[0]
options = RelaxOptions(method=config["method"], tol=config["tol"])
engine = get_engine("jax")
rng = np.random.default_rng(2026)  # the initial states
cases = [("trained parameters", params)]
cases += [(f"spread {s:g}, chip {k}", xy.with_spread(params, s, np.random.default_rng([k, 4]))._asdict())
          for s in SPREADS for k in range(CHIPS)]  # chip k: the draw of xy-mnist's init_spread with seed k
cases += [(f"{b} bits", quantised(params, b, topo.layers)) for b in BITS]
print(f"{ds.attrs['topology']}, {n} test images, one random initial state each")
results = {}
for name, p in cases:
    t = time.perf_counter()
    phi, converged = predict_phases(engine, p, topo, test.x, rng, options)
    results[name] = 100 * float(accuracy(phi, test))
    print(f"{name:20s} test accuracy {results[name]:6.2f} %, {100 * np.mean(~converged):.3f} % unconverged, "
          f"{time.perf_counter() - t:.0f} s", flush=True)
chips = np.array([[results[f"spread {s:g}, chip {k}"] for k in range(CHIPS)] for s in SPREADS])
for s, acc in zip(SPREADS, chips):
    print(f"spread {s:g}: mean {acc.mean():.2f} %, std {acc.std(ddof=1):.2f}, min {acc.min():.2f} %, "
          f"max {acc.max():.2f} %")

fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
for k in range(CHIPS):
    left.semilogx(SPREADS, chips[:, k], ".", color="C0", alpha=0.5, label="one chip" if not k else None)
left.semilogx(SPREADS, chips.mean(axis=1), "o-", color="C0", label=f"mean of {CHIPS} chips")
left.set(xlabel="relative spread S of couplings and bias amplitudes", ylabel="test accuracy (%)")
right.plot(BITS, [results[f"{b} bits"] for b in BITS], "o-")
right.set(xlabel="bits per coupling and bias amplitude")
for ax in (left, right):
    ax.axhline(results["trained parameters"], color="grey", ls="--", lw=1, label="trained parameters")
    ax.axhline(10, color="grey", ls=":", lw=1, label="chance")
left.legend(fontsize=8)
fig.suptitle(f"XY network [{ds.attrs['topology'].split(':')[1]}] on MNIST ({n} test images): fabrication tolerance",
             fontsize=10)
fig.tight_layout()
out = f"{sys.argv[1].rsplit('.', 1)[0]}_robustness.png"
fig.savefig(out, dpi=120)
print(f"plot: {out}")
