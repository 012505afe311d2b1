"""
    PyoscEngine

The Julia engine of pyosc: the models of `pyosc.models` (XY and phase-deviation oscillator networks;
microscopic, averaged and phase-only optomechanical networks) integrated with OrdinaryDiffEq.jl and
differentiated with SciMLSensitivity.jl, behind the array-in/array-out boundary of
`pyosc.engines.base.Engine`. The Python bridge (`pyosc/engines/julia/`) is its only caller.

# Conventions of the entry points

  - **Plain arguments only**: arrays of reals, integers or Bools, strings, numbers and a
    `Dict{String, Any}` of parameter arrays; results are arrays, numbers, tuples and
    `Dict{String, Any}`. Every entry point copies its inputs into native `Array`s first.
    A Python dict arrives as a `PyDict{Py, Py}`, so the bridge builds the Julia dict itself:
    `d = jl.seval("Dict{String, Any}")()`, then `d[name] = juliacall.convert(jl.Array, a)` for
    each array and `d[name] = float(x)` for each scalar. Pass Python `int`/`float`/`str`
    keywords (not NumPy scalars).
  - **Batch arrays arrive transposed**: the bridge passes the F-ordered view `a.T` of a C-ordered
    NumPy array, so NumPy `(B, N)` arrives as a Julia `N × B` matrix and `(B, N, d)` as `d × N × B`
    (units first, batch last: one contiguous column per state). Results use the same reversed
    layout (`np.array(result).T` restores NumPy's order). `B` flattens NumPy's (samples, inits).
  - **Parameter arrays keep NumPy's index order** (passed untransposed: `W[i, j]` here is
    `W[i-1, j-1]` in Python) and carry no `runs` axis: one network per call.
  - **Index arrays are 0-based NumPy indices** (negative ones count from the end); `clamped` is a
    Bool mask of length N.
  - Solver names are pyosc's (case-insensitive): see `SOLVERS`.

# Entry points

  - `relax(model, params, phi0, clamped, outputs, targets, beta; method, tol, max_iter, t_max,
    solver, rtol, atol, max_steps) -> (phi, converged, force, work)`
  - `trajectory(model, params, phi0, clamped, outputs, targets, beta, times; solver, rtol, atol,
    max_steps) -> (phis, ok)`
  - `ep_step(model, params, phi0, clamped, outputs, targets, beta; <relax keywords>)
    -> (gradient, free, nudged)`
  - `integrate(model, params, y0, inputs, times; solver, rtol, atol, max_steps, dt) -> (ys, ok)`
  - `final_state_loss_and_grad(model, params, y0, inputs, targets, outputs, t1; kind, solver,
    rtol, atol, max_steps, dt, sensealg) -> (loss, gradient, ok)`
  - `steady_state_loss_and_grad(model, params, y0, inputs, targets, outputs; kind, tol, max_iter,
    dt0, sensealg) -> (loss, gradient, converged)`
  - `versions() -> Dict{String, String}`

Batches are threaded over `Threads.nthreads()` threads (one state per iteration).
"""
module PyoscEngine

# The SciML APIs called here follow the documentation and source of SciMLBase v3.49,
# OrdinaryDiffEq v7.7 (sublibraries OrdinaryDiffEqTsit5 v2.1, OrdinaryDiffEqLowOrderRK v2.2,
# OrdinaryDiffEqHighOrderRK v2.2, OrdinaryDiffEqSDIRK v2.9, OrdinaryDiffEqRosenbrock v2.6),
# SciMLSensitivity v7.112, DiffEqCallbacks v4.19, ForwardDiff v1.4 and PrecompileTools v1.3;
# each call site names the one it relies on.
using LinearAlgebra:
    LinearAlgebra,
    I,
    Symmetric,
    cholesky,
    diag,
    dot,
    eigvals,
    issuccess,
    lu
import ForwardDiff
using SciMLBase: SciMLBase, ODEFunction, ODEProblem, SteadyStateProblem, solve
using OrdinaryDiffEqTsit5: OrdinaryDiffEqTsit5, Tsit5
using OrdinaryDiffEqLowOrderRK: OrdinaryDiffEqLowOrderRK, DP5
using OrdinaryDiffEqHighOrderRK: OrdinaryDiffEqHighOrderRK, DP8
using OrdinaryDiffEqSDIRK: OrdinaryDiffEqSDIRK, Kvaerno3, Kvaerno4, Kvaerno5
using OrdinaryDiffEqRosenbrock: OrdinaryDiffEqRosenbrock, Rodas5P
using DiffEqCallbacks: DiffEqCallbacks, TerminateSteadyState
using SciMLSensitivity:
    SciMLSensitivity,
    EnzymeVJP,
    GaussAdjoint,
    InterpolatingAdjoint,
    SteadyStateAdjoint,
    adjoint_sensitivities
using PrecompileTools: PrecompileTools, @compile_workload, @setup_workload

export relax,
    trajectory,
    ep_step,
    integrate,
    final_state_loss_and_grad,
    steady_state_loss_and_grad,
    versions

include("models.jl")
include("relaxation.jl")
include("integration.jl")
include("sensitivities.jl")

"""
    versions() -> Dict{String, String}

Versions of Julia, this package and the packages it calls (for `pyosc info` and result provenance),
plus the number of Julia threads.
"""
function versions()
    out = Dict{String, String}(
        "julia" => string(VERSION),
        "threads" => string(Threads.nthreads()),
    )
    modules = (
        PyoscEngine,
        SciMLBase,
        SciMLSensitivity,
        OrdinaryDiffEqTsit5,
        OrdinaryDiffEqLowOrderRK,
        OrdinaryDiffEqHighOrderRK,
        OrdinaryDiffEqSDIRK,
        OrdinaryDiffEqRosenbrock,
        DiffEqCallbacks,
        ForwardDiff,
        PrecompileTools,
    )
    for m in modules
        v = pkgversion(m)
        out[string(nameof(m))] = v === nothing ? "unknown" : string(v)
    end
    return out
end

include("precompile.jl")

end # module PyoscEngine
