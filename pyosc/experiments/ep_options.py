"""Settings shared by the XY equilibrium-propagation tasks (:mod:`~pyosc.experiments.xor`,
:mod:`~pyosc.experiments.digits`)."""
from __future__ import annotations

from dataclasses import dataclass

from pyosc.engines.base import RelaxOptions
from pyosc.experiments.options import option
from pyosc.training.ep import ESTIMATORS, EPConfig
from pyosc.validation import COUNT, POSITIVE, SEED


@dataclass(frozen=True)
class EPTaskConfig:
    """EP settings of the XY tasks (angles in rad, times in units of the flow's time)."""

    beta: float = option(0.1, "nudging strength beta", allowed=POSITIVE)
    estimator: str = option("one-sided", "EP gradient estimate: one-sided (error O(beta)) or richardson "
                                         "(2 g(beta) - g(2 beta), error O(beta^2), one more nudged relaxation)",
                            choices=ESTIMATORS)
    optimizer: str = option("sgd", "optimizer", choices=("sgd", "adam"))
    n_inits: int = option(1, "random initial states per sample (M_init)", allowed=COUNT)
    seed: int = option(0, "random seed of the initial parameters, batches and initial states", allowed=SEED)
    method: str = option("newton", "relaxation method (see pyosc.engines.base.RelaxOptions)",
                         choices=("newton", "continuation", "ode"))
    tol: float = option(1e-10, "steady state: max |dphi/dt| over the free units", allowed=POSITIVE)
    t_max: float = option(RelaxOptions.t_max, "ode: stop integrating at this time even if not steady "
                                               "(the paper's fixed-horizon protocol: 100)", allowed=POSITIVE)
    shared_steps: bool = option(False, "ode: one step-size controller for the whole batch, as the paper's code")

    def ep_config(self, *, n_iterations: int, learning_rate: float, eval_every: int, batch_per_class: int | None = None,
                  snapshots: tuple[int, ...] = ()) -> EPConfig:
        """The trainer's :class:`~pyosc.training.ep.EPConfig`."""
        return EPConfig(beta=self.beta, learning_rate=learning_rate, optimizer=self.optimizer,
                        n_iterations=n_iterations, n_inits=self.n_inits, batch_per_class=batch_per_class,
                        eval_every=eval_every, snapshots=snapshots, seed=self.seed, estimator=self.estimator,
                        relax=RelaxOptions.for_tolerance(self.method, self.tol, self.t_max, self.shared_steps))
