"""Racetrack networks: neuron modes coupled through coupler modes (Wanjura & Marquardt, SI S14-S19).

Each coupler mode c (detuning Delta_c, decays kappa_c, kappa'_c) couples with strength g to the two neuron
modes (k, l) it sits between; it has no direct coupling otherwise. Eliminating c at probe frequency omega
(conventions of :mod:`pyosc.models.scattering`) adds the self-energy

    Sigma = g^2 / (omega - Delta_c + i kappa_c,tot / 2)

to H_kk, H_ll, H_kl and H_lk: an effective coupling ``J_eff = Re Sigma ~ -g^2 / Delta_c`` for
``|Delta_c| >> kappa_c`` (the coherent regime), a detuning shift ``Re Sigma`` of both neurons and an extra decay
``-2 Im Sigma``. The neuron detunings are compensated so that the neurons sit where the target network wants
them, and alternating coupler signs ``(-1)^(k+l)`` (a gauge transformation ``a_k -> (-1)^k a_k`` of the target
network, which leaves every diagonal S_kk unchanged) keep the compensation small.
"""
from __future__ import annotations

import numpy as np

from pyosc.errors import InvalidInputError, as_real_array, check_positive
from pyosc.models.scattering import CoupledModeNetwork


def self_energy(g, coupler_detuning, coupler_kappa, omega: float = 0.0) -> np.ndarray:
    """``Sigma = g^2 / (omega - Delta_c + i kappa_c / 2)`` (complex) for each coupler (kappa_c: total decay)."""
    return np.asarray(g) ** 2 / (omega - np.asarray(coupler_detuning) + 0.5j * np.asarray(coupler_kappa))


def self_energy_derivative(g, coupler_detuning, coupler_kappa, omega: float = 0.0) -> np.ndarray:
    """``dSigma / dDelta_c = g^2 / (omega - Delta_c + i kappa_c / 2)^2``; its real part is dJ_eff/dDelta_c."""
    return np.asarray(g) ** 2 / (omega - np.asarray(coupler_detuning) + 0.5j * np.asarray(coupler_kappa)) ** 2


def coupler_detuning_for(j_eff, g, coupler_kappa) -> np.ndarray:
    """Coupler detunings whose effective coupling at omega = 0 is exactly ``Re Sigma = j_eff``.

    Solves ``J Delta^2 + g^2 Delta + J kappa^2 / 4 = 0`` and takes the large root
    ``Delta_c = -(g^2 + sqrt(g^4 - J^2 kappa^2)) / (2 J)`` (``~ -g^2 / J``, the coherent regime); needs
    ``0 < |J| <= g^2 / kappa_c``.
    """
    j = as_real_array("j_eff", j_eff, ndim=(0, 1))
    g2 = as_real_array("g", g, ndim=(0, 1)) ** 2
    k = as_real_array("coupler_kappa", coupler_kappa, ndim=(0, 1))
    if np.any(j == 0):
        raise InvalidInputError("j_eff must be nonzero: a vanishing coupling needs an infinitely detuned coupler")
    disc = g2 ** 2 - (j * k) ** 2
    if np.any(disc < 0):
        raise InvalidInputError("|j_eff| must be <= g^2 / kappa_c: stronger effective couplings cannot be reached "
                                "with this g and coupler decay")
    return -(g2 + np.sqrt(disc)) / (2 * j)


def neuron_shifts(n_neurons: int, pairs: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Sum of the self-energies of all couplers touching each neuron (complex, (n_neurons,))."""
    out = np.zeros(n_neurons, np.complex128)
    np.add.at(out, pairs[:, 0], sigma)
    np.add.at(out, pairs[:, 1], sigma)
    return out


def coupler_network(neuron_detuning, neuron_kappa_ext, neuron_kappa_int, pairs, g, coupler_detuning,
                    coupler_kappa_ext, coupler_kappa_int=0.0, input_sites=None) -> CoupledModeNetwork:
    """A :class:`CoupledModeNetwork` of N neurons (modes 0..N-1) and one coupler per pair (modes N..N+E-1).

    ``pairs`` (E, 2): the neurons each coupler joins; ``g`` (E,) or scalar: neuron-coupler coupling;
    coupler decays may be scalars. ``input_sites`` index neurons.
    """
    det = as_real_array("neuron_detuning", neuron_detuning, ndim=1)
    n = det.size
    pairs = np.asarray(pairs)
    if pairs.dtype.kind not in "iu" or pairs.ndim != 2 or pairs.shape[1] != 2:
        raise InvalidInputError(f"pairs must be an (E, 2) integer array, got dtype {pairs.dtype}, shape {pairs.shape}")
    e = pairs.shape[0]
    if e and (pairs.min() < 0 or pairs.max() >= n):
        raise InvalidInputError(f"pairs must index neurons 0..{n - 1}")
    gg = np.broadcast_to(as_real_array("g", g, ndim=(0, 1)), (e,))
    cdet = as_real_array("coupler_detuning", coupler_detuning, shape=(e,))
    c = n + np.arange(e)
    edges = np.concatenate([np.stack([pairs[:, 0], c], 1), np.stack([pairs[:, 1], c], 1)])
    return CoupledModeNetwork(
        np.concatenate([det, cdet]), edges, np.concatenate([gg, gg]),
        np.concatenate([np.broadcast_to(neuron_kappa_ext, (n,)), np.broadcast_to(coupler_kappa_ext, (e,))]),
        np.concatenate([np.broadcast_to(neuron_kappa_int, (n,)), np.broadcast_to(coupler_kappa_int, (e,))]),
        input_sites=input_sites)


def racetrack_initialisation(target_detuning, pairs, target_coupling, g, coupler_kappa, *,
                             alternate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The SI IV.2 recipe: ersatz couplings -> coupler detunings -> alternating signs -> compensated neurons.

    ``target_detuning`` (N,) and ``target_coupling`` (E,) describe the network to emulate (e.g. the paper's
    initialisation); returns ``(neuron_detuning, coupler_detuning)`` such that the coupler network's effective
    couplings are exactly ``target_coupling * (-1)^(k+l)`` (``alternate``) or ``target_coupling``, and the real
    parts of the neurons' effective detunings equal ``target_detuning``.
    """
    det = as_real_array("target_detuning", target_detuning, ndim=1)
    pairs = np.asarray(pairs)
    j = as_real_array("target_coupling", target_coupling, shape=(pairs.shape[0],))
    check_positive("coupler_kappa", coupler_kappa, allow_zero=True)
    if alternate:
        j = j * np.where((pairs[:, 0] + pairs[:, 1]) % 2 == 0, 1.0, -1.0)
    cdet = coupler_detuning_for(j, g, coupler_kappa)
    shift = neuron_shifts(det.size, pairs, self_energy(g, cdet, coupler_kappa)).real
    return det - shift, cdet
