# Batched integration of the dynamical models (pyosc/engines/jax_dynamics.py `integrate`): every
# trajectory is its own ODE with its own adaptive steps, threaded over the batch.

"""The ODE solver names (case-insensitive): pyosc's diffrax names plus "rodas5p"."""
const SOLVERS = ("tsit5", "dopri5", "dopri8", "kvaerno3", "kvaerno4", "kvaerno5", "rodas5p")

"""
    ode_algorithm(name)

The OrdinaryDiffEq v7 algorithm for a solver name: "tsit5" -> Tsit5(), "dopri5" -> DP5(), "dopri8"
-> DP8() (explicit); "kvaerno3/4/5" -> Kvaerno3/4/5() (L-stable ESDIRK, as diffrax's Kvaerno), and
"rodas5p" -> Rodas5P() (Rosenbrock) for stiff problems. The implicit ones differentiate the
right-hand side with ForwardDiff (their default `autodiff = AutoForwardDiff()`), which the models allow.
"""
function ode_algorithm(name::AbstractString)
    key = lowercase(name)
    # OrdinaryDiffEqTsit5 v2.1 (src/OrdinaryDiffEqTsit5.jl exports Tsit5)
    key == "tsit5" && return Tsit5()
    # OrdinaryDiffEqLowOrderRK v2.2 (exports DP5)
    key == "dopri5" && return DP5()
    # OrdinaryDiffEqHighOrderRK v2.2 (exports DP8)
    key == "dopri8" && return DP8()
    # OrdinaryDiffEqSDIRK v2.9 (exports Kvaerno3, Kvaerno4, Kvaerno5)
    key == "kvaerno3" && return Kvaerno3()
    key == "kvaerno4" && return Kvaerno4()
    key == "kvaerno5" && return Kvaerno5()
    # OrdinaryDiffEqRosenbrock v2.6 (exports Rodas5P)
    key == "rodas5p" && return Rodas5P()
    throw(ArgumentError("unknown solver \"$name\"; use one of $SOLVERS"))
end

"""Absolute value of a number's primal part (ForwardDiff duals of any nesting depth)."""
primal_abs(x::Real) = abs(x)
primal_abs(x::ForwardDiff.Dual) = primal_abs(ForwardDiff.value(x))

"""
    maxnorm(u, t)

The max norm of the step-size controller (pyosc measures errors per trajectory in the max norm),
on primal values only, so a forward-mode solve takes the same steps as the plain one.
"""
maxnorm(u::Number, t) = Float64(primal_abs(u))
maxnorm(u::AbstractArray, t) = isempty(u) ? 0.0 : Float64(maximum(primal_abs, u))

"""
    step_options(rtol, atol, max_steps, dt) -> NamedTuple

Solve keywords: adaptive steps with (reltol, abstol) in the max norm, or fixed steps of `dt` > 0.
OrdinaryDiffEq v7 (OrdinaryDiffEqCore 4.15, src/solve.jl): reltol, abstol, maxiters, internalnorm,
adaptive, dt are `solve` keywords.
"""
function step_options(rtol::Real, atol::Real, max_steps::Integer, dt::Real)
    max_steps >= 1 || throw(ArgumentError("max_steps must be >= 1, got $max_steps"))
    if dt > 0
        return (adaptive = false, dt = Float64(dt), maxiters = Int(max_steps))
    end
    (rtol > 0 && atol > 0) ||
        throw(ArgumentError("rtol and atol must be > 0, got $rtol, $atol"))
    return (
        reltol = Float64(rtol),
        abstol = Float64(atol),
        maxiters = Int(max_steps),
        internalnorm = maxnorm,
    )
end

function check_times(times::AbstractVector)
    ts = Vector{Float64}(times)
    if isempty(ts) || ts[1] < 0 || any(diff(ts) .<= 0) || ts[end] <= 0
        throw(ArgumentError(
            "times must be non-empty, non-negative, strictly increasing and end after 0",
        ))
    end
    return ts
end

"""
    DynamicsBatch

A batch of trajectories of one dynamical model: θ (the packed trainable parameters), the fixed
table (averaged model), y0 (d × N × B) and the input phases (n_in × B).
"""
struct DynamicsBatch
    spec::DynamicsSpec
    n::Int
    θ::Vector{Float64}
    table::Union{Nothing, AmplitudeTable}
    y0::Array{Float64, 3}
    inputs::Matrix{Float64}
end

function dynamics_batch(
    model::AbstractString,
    params::AbstractDict,
    y0::AbstractArray,
    inputs::AbstractMatrix,
)
    spec = dynamics_spec(model)
    ndims(y0) == 3 && size(y0, 1) == spec.state_size ||
        throw(ArgumentError(
            "y0 must be d × N × B with d = $(spec.state_size) for \"$model\", got size $(size(y0))",
        ))
    n, B = size(y0, 2), size(y0, 3)
    size(inputs, 2) == B && size(inputs, 1) <= n ||
        throw(ArgumentError(
            "inputs must be n_in × B with n_in <= N = $n and B = $B, got size $(size(inputs))",
        ))
    θ = pack_params(spec, params, n)
    table = isempty(spec.tables) ? nothing : amplitude_table(params)
    return DynamicsBatch(spec, n, θ, table, Array{Float64, 3}(y0), Matrix{Float64}(inputs))
end

"""The right-hand side of trajectory `b` (its own input phases)."""
function batch_rhs(batch::DynamicsBatch, b::Int)
    return make_rhs(batch.spec, batch.n, batch.inputs[:, b], batch.table)
end

"""The initial state of trajectory `b` as a flat vector (cell-major: the C order of NumPy's (N, d))."""
batch_u0(batch::DynamicsBatch, b::Int) = vec(batch.y0[:, :, b])

"""
    integrate(model, params, y0, inputs, times; solver = "tsit5", rtol = 1e-8, atol = 1e-8,
              max_steps = 100_000, dt = 0.0) -> (ys, ok)

Integrate a dynamical model ("optomech-micro", "optomech-averaged", "optomech-phase") from every
trajectory of `y0` (d × N × B) with input phases `inputs` (n_in × B, driving the first cells) and
return the states at `times` (from t = 0): ys is d × N × T × B (NaN for a failed trajectory), ok a
Vector{Bool} (false: step budget exhausted or a non-finite state). `dt > 0`: fixed steps.
"""
function integrate(
    model::AbstractString,
    params::AbstractDict,
    y0::AbstractArray,
    inputs::AbstractMatrix,
    times::AbstractVector;
    solver::AbstractString = "tsit5",
    rtol::Real = 1.0e-8,
    atol::Real = 1.0e-8,
    max_steps::Integer = 100_000,
    dt::Real = 0.0,
)
    batch = dynamics_batch(model, params, y0, inputs)
    ts = check_times(times)
    alg = ode_algorithm(solver)
    options = step_options(rtol, atol, max_steps, dt)
    d, n, B = size(batch.y0)
    T = length(ts)
    ys = fill(NaN, d, n, T, B)
    ok = fill(false, B)
    Threads.@threads for b in 1:B
        # SciMLBase v3: ODEFunction{iip, specialize}(f) and ODEProblem(f, u0, tspan, p).
        f = ODEFunction{true, SciMLBase.FullSpecialize}(batch_rhs(batch, b))
        prob = ODEProblem(f, batch_u0(batch, b), (0.0, ts[end]), batch.θ)
        # OrdinaryDiffEq v7: solve(prob, alg; saveat, <step options>); SciMLBase v3 successful_retcode.
        sol = solve(prob, alg; saveat = ts, options...)
        good = SciMLBase.successful_retcode(sol) && length(sol.u) == T
        if good
            for i in 1:T
                ys[:, :, i, b] .= reshape(sol.u[i], d, n)
            end
        end
        ok[b] = good
    end
    return ys, ok
end
