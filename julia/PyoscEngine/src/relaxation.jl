# Relaxation of the phase networks "xy" and "onn" to stable equilibria (clamped inputs held fixed,
# outputs optionally nudged toward targets), trajectories of their flow, and equilibrium-propagation
# steps. The port of pyosc/engines/jax_engine.py; each state of a batch is its own problem, and the
# batch is threaded (`Threads.@threads`, one state per iteration).

const RELAX_METHODS = ("newton", "ode")

"""
    RelaxFlow

The (nudged) flow of one state: dphi/dt = velocity(phi) - beta dC/dphi on the outputs, zero on the
clamped units. For odd H this is the gradient flow of F = E + beta C (C = the log cost).
"""
struct RelaxFlow
    net::PhaseNetwork
    clamped::Vector{Bool}
    outputs::Vector{Int}
    target::Vector{Float64}
    beta::Float64
end

function (flow::RelaxFlow)(dphi, phi, p, t)
    velocity!(dphi, flow.net, phi)
    if flow.beta > 0
        for (m, k) in enumerate(flow.outputs)
            dphi[k] -= flow.beta * log_cost_grad(phi[k] - flow.target[m])
        end
    end
    for k in eachindex(flow.clamped)
        if flow.clamped[k]
            dphi[k] = zero(eltype(dphi))
        end
    end
    return nothing
end

"""A batch of relaxation problems: phi0 (N × B), one target column per state."""
struct RelaxBatch
    model::String
    net::PhaseNetwork
    phi0::Matrix{Float64}
    clamped::Vector{Bool}
    outputs::Vector{Int}
    targets::Matrix{Float64}
end

"""How to relax (see pyosc.engines.base.RelaxOptions; `solver` is an ODE solver name)."""
struct RelaxSettings
    method::String
    tol::Float64
    max_iter::Int
    t_max::Float64
    solver::String
    rtol::Float64
    atol::Float64
    max_steps::Int
end

"""
    unit_indices(indices, n, name) -> Vector{Int}

1-based unit indices from the 0-based NumPy indices `indices` (negative ones count from the end).
"""
function unit_indices(indices::AbstractVector, n::Integer, name::AbstractString)
    out = Int[]
    for i in indices
        (i isa Integer || (i isa Real && isinteger(i))) ||
            throw(ArgumentError("$name must hold integer unit indices, got $i"))
        k = Int(i)
        -n <= k < n || throw(ArgumentError("$name: index $k out of range for $n units"))
        push!(out, k < 0 ? k + n + 1 : k + 1)
    end
    return out
end

function relax_batch_problem(
    model::AbstractString,
    params::AbstractDict,
    phi0::AbstractMatrix,
    clamped::AbstractVector,
    outputs::AbstractVector,
    targets::AbstractMatrix,
)
    net = phase_network(model, params)
    n = n_units(net)
    size(phi0, 1) == n ||
        throw(ArgumentError(
            "phi0 must be an N × B matrix with N = $n units, got size $(size(phi0))",
        ))
    length(clamped) == n ||
        throw(ArgumentError(
            "clamped must be a Bool vector of length $n, got length $(length(clamped))",
        ))
    mask = Vector{Bool}(clamped)
    outs = unit_indices(outputs, n, "outputs")
    any(mask[outs]) && throw(ArgumentError("outputs must be free (not clamped) units"))
    size(targets) == (length(outs), size(phi0, 2)) ||
        throw(ArgumentError(
            "targets must be n_outputs × B = $((length(outs), size(phi0, 2))), got $(size(targets))",
        ))
    return RelaxBatch(
        String(model),
        net,
        Matrix{Float64}(phi0),
        mask,
        outs,
        Matrix{Float64}(targets),
    )
end

function relax_settings(method, tol, max_iter, t_max, solver, rtol, atol, max_steps)
    method in RELAX_METHODS ||
        throw(ArgumentError(
            "unknown relaxation method \"$method\"; use one of $RELAX_METHODS",
        ))
    for (name, value) in (("tol", tol), ("t_max", t_max), ("rtol", rtol), ("atol", atol))
        value > 0 || throw(ArgumentError("$name must be > 0, got $value"))
    end
    (max_iter >= 1 && max_steps >= 1) ||
        throw(ArgumentError("max_iter and max_steps must be >= 1"))
    return RelaxSettings(
        String(method),
        Float64(tol),
        Int(max_iter),
        Float64(t_max),
        lowercase(String(solver)),
        Float64(rtol),
        Float64(atol),
        Int(max_steps),
    )
end

"""
    local_model(flow, phi, free, out_free) -> (F, g, H)

F = E + beta C at `phi`, its gradient and Hessian on the free units (`out_free`: the outputs'
positions among them). The free phase (beta = 0) adds nothing, even at anti-alignment.
"""
function local_model(
    flow::RelaxFlow,
    phi::Vector{Float64},
    free::Vector{Int},
    out_free::Vector{Int},
)
    n = length(phi)
    g_all = energy_gradient!(similar(phi), flow.net, phi)
    H_all = energy_hessian!(similar(phi, n, n), flow.net, phi)
    F = energy(flow.net, phi)
    g = g_all[free]
    H = H_all[free, free]
    if flow.beta > 0
        for (m, k) in enumerate(flow.outputs)
            d = phi[k] - flow.target[m]
            q = out_free[m]
            F += flow.beta * log_cost(d)
            g[q] += flow.beta * log_cost_grad(d)
            H[q, q] += flow.beta * log_cost_curvature(d)
        end
    end
    return F, g, H
end

"""Solve (H + mu I) d = -g; NaN where H + mu I is not positive definite."""
function damped_newton_step(H::Matrix{Float64}, g::Vector{Float64}, mu::Float64)
    C = cholesky(Symmetric(H + mu * I); check = false)
    issuccess(C) || return fill(NaN, length(g))
    return -(C \ g)
end

"""
    newton_relax(flow, phi0, free, out_free, tol, max_iter, mu_scale) -> (phi, converged, force, iterations)

Pseudo-transient continuation (pyosc.engines.jax_engine._newton_relax, one state): implicit-Euler
steps (H + mu) d = -g of the gradient flow, accepted only if F does not increase; mu follows
Nielsen's rule (shrinks after good steps, doubles its growth after rejections). Converged: the
largest free-unit force is at most `tol` and the Hessian is positive definite (a stable minimum).
"""
function newton_relax(
    flow::RelaxFlow,
    phi0::Vector{Float64},
    free::Vector{Int},
    out_free::Vector{Int},
    tol::Float64,
    max_iter::Int,
    mu_scale::Float64,
)
    phi = copy(phi0)
    isempty(free) && return phi, true, 0.0, 0.0
    F, g, H = local_model(flow, phi, free, out_free)
    mu = mu_scale * max(maximum(abs, diag(H)), 1.0e-3)
    nu = 2.0
    iterations = 0
    for _ in 1:max_iter
        maximum(abs, g) > tol || break
        d = damped_newton_step(H, g, mu)
        trial = copy(phi)
        trial[free] .+= d
        F_t, g_t, H_t = local_model(flow, trial, free, out_free)
        predicted = (mu * sum(abs2, d) - dot(g, d)) / 2
        actual = F - F_t
        if isfinite(F_t) && all(isfinite, d) && actual >= -1.0e-13 * (1 + abs(F))
            rho = clamp(actual / (predicted > 0 ? predicted : 1.0), 0.0, 1.0)
            mu *= max(1 / 3, 1 - (2 * rho - 1)^3)
            nu = 2.0
            phi, F, g, H = trial, F_t, g_t, H_t
        else
            mu *= nu
            nu *= 2
        end
        iterations += 1
    end
    force = maximum(abs, g)
    stable = issuccess(cholesky(Symmetric(H); check = false))
    return phi, force <= tol && stable, force, Float64(iterations)
end

"""Terminates an integration once max |dphi/dt| < tol (the exact flow, not an interpolant)."""
struct SteadyTest
    flow::RelaxFlow
    tol::Float64
    buffer::Vector{Float64}
end

function (test::SteadyTest)(u, t, integrator)
    test.flow(test.buffer, u, nothing, t)
    return maximum(abs, test.buffer) < test.tol
end

"""
    ode_relax(flow, phi0, alg, settings) -> (phi, converged, force, t_end)

Integrate the flow until max |dphi/dt| < tol or t_max (pyosc.engines.jax_engine._ode_relax).
"""
function ode_relax(flow::RelaxFlow, phi0::Vector{Float64}, alg, settings::RelaxSettings)
    # SciMLBase v3 (3.49, src/scimlfunctions.jl): ODEFunction{iip, specialize}(f); FullSpecialize
    # compiles for our concrete callable instead of wrapping it (AutoSpecialize is v7's default).
    f = ODEFunction{true, SciMLBase.FullSpecialize}(flow)
    # SciMLBase v3: ODEProblem(f, u0, tspan) (p defaults to NullParameters; the flow ignores it).
    prob = ODEProblem(f, copy(phi0), (0.0, settings.t_max))
    # DiffEqCallbacks v4.19 (src/terminatesteadystate.jl): TerminateSteadyState(abstol, reltol,
    # test; min_t, wrap_test); with wrap_test = Val(false), `test` is the condition (u, t, integrator).
    steady = TerminateSteadyState(
        settings.tol,
        0.0,
        SteadyTest(flow, settings.tol, similar(phi0));
        wrap_test = Val(false),
    )
    # OrdinaryDiffEq v7 (OrdinaryDiffEqCore 4.15, src/solve.jl): solve(prob, alg; callback, reltol,
    # abstol, maxiters, save_everystep, save_start); the final state is sol.u[end] (RAT v4: not sol[end]).
    sol = solve(
        prob,
        alg;
        callback = steady,
        reltol = settings.rtol,
        abstol = settings.atol,
        maxiters = settings.max_steps,
        save_everystep = false,
        save_start = false,
    )
    phi = Vector{Float64}(sol.u[end])
    t_end = Float64(sol.t[end])
    v = similar(phi)
    flow(v, phi, nothing, t_end)
    force = maximum(abs, v; init = 0.0)
    return phi, force < settings.tol && t_end < settings.t_max, force, t_end
end

"""
    relax_batch(problem, settings, beta, mu_scale, phi0) -> (phi, converged, force, work)

Relax every column of `phi0` (threaded over the batch).
"""
function relax_batch(
    problem::RelaxBatch,
    settings::RelaxSettings,
    beta::Float64,
    mu_scale::Float64,
    phi0::Matrix{Float64},
)
    if settings.method == "newton" && !has_energy(problem.net)
        throw(ArgumentError(
            "the coupling function H has even (cos) parts, so the phase model has no energy " *
                "for the \"newton\" relaxation; use method = \"ode\"",
        ))
    end
    B = size(phi0, 2)
    free = findall(!, problem.clamped)
    out_free = Int[something(findfirst(==(k), free), 0) for k in problem.outputs]
    alg = settings.method == "ode" ? ode_algorithm(settings.solver) : nothing
    phi = similar(phi0)
    converged = fill(false, B)
    force = zeros(B)
    work = zeros(B)
    Threads.@threads for b in 1:B
        flow = RelaxFlow(
            problem.net,
            problem.clamped,
            problem.outputs,
            problem.targets[:, b],
            beta,
        )
        result = if settings.method == "newton"
            newton_relax(
                flow,
                phi0[:, b],
                free,
                out_free,
                settings.tol,
                settings.max_iter,
                mu_scale,
            )
        else
            ode_relax(flow, phi0[:, b], alg, settings)
        end
        phi[:, b] .= result[1]
        converged[b] = result[2]
        force[b] = result[3]
        work[b] = result[4]
    end
    return phi, converged, force, work
end

"""
    relax(model, params, phi0, clamped, outputs, targets, beta; method = "newton", tol = 1e-10,
          max_iter = 200, t_max = 1e4, solver = "tsit5", rtol = 1e-8, atol = 1e-8,
          max_steps = 1_000_000) -> (phi, converged, force, work)

Relax every state (column) of `phi0` (N × B) of model "xy" or "onn" to a stable equilibrium; the
units with `clamped[k]` stay fixed. With `beta > 0` the outputs (0-based unit indices) are nudged
toward `targets` (n_out × B) with the log cost. `method`: "newton" (pseudo-transient continuation,
needs an odd H) or "ode" (integrate the flow with `solver` until max |dphi/dt| < tol, flagged if not
steady by `t_max`). Returns phi (N × B), converged (Vector{Bool}), force (max |dphi/dt| on the free
units) and work (iterations, or the time reached) per state (pyosc.engines.base.Equilibrium).
"""
function relax(
    model::AbstractString,
    params::AbstractDict,
    phi0::AbstractMatrix,
    clamped::AbstractVector,
    outputs::AbstractVector,
    targets::AbstractMatrix,
    beta::Real;
    method::AbstractString = "newton",
    tol::Real = 1.0e-10,
    max_iter::Integer = 200,
    t_max::Real = 1.0e4,
    solver::AbstractString = "tsit5",
    rtol::Real = 1.0e-8,
    atol::Real = 1.0e-8,
    max_steps::Integer = 1_000_000,
)
    beta >= 0 || throw(ArgumentError("beta must be >= 0, got $beta"))
    problem = relax_batch_problem(model, params, phi0, clamped, outputs, targets)
    settings = relax_settings(method, tol, max_iter, t_max, solver, rtol, atol, max_steps)
    return relax_batch(problem, settings, Float64(beta), 1.0, problem.phi0)
end

"""
    ep_step(model, params, phi0, clamped, outputs, targets, beta; <relax keywords>)
        -> (gradient, free, nudged)

One equilibrium-propagation evaluation: free relaxation from `phi0`, nudged relaxation (beta > 0)
from the free equilibrium, and gradient = (dE/dtheta|nudged - dE/dtheta|free) / beta averaged over
the states, a Dict of the model's parameter names. `free` and `nudged` are the 4-tuples of
[`relax`](@ref) (pyosc.engines.base.EPStep).
"""
function ep_step(
    model::AbstractString,
    params::AbstractDict,
    phi0::AbstractMatrix,
    clamped::AbstractVector,
    outputs::AbstractVector,
    targets::AbstractMatrix,
    beta::Real;
    method::AbstractString = "newton",
    tol::Real = 1.0e-10,
    max_iter::Integer = 200,
    t_max::Real = 1.0e4,
    solver::AbstractString = "tsit5",
    rtol::Real = 1.0e-8,
    atol::Real = 1.0e-8,
    max_steps::Integer = 1_000_000,
)
    (beta > 0 && isfinite(beta)) ||
        throw(ArgumentError("ep_step needs a finite beta > 0, got $beta"))
    problem = relax_batch_problem(model, params, phi0, clamped, outputs, targets)
    settings = relax_settings(method, tol, max_iter, t_max, solver, rtol, atol, max_steps)
    free = relax_batch(problem, settings, 0.0, 1.0, problem.phi0)
    nudged = relax_batch(problem, settings, Float64(beta), 1.0e-3, free[1])
    g_free = energy_param_gradient(problem.model, problem.net, free[1])
    g_nudged = energy_param_gradient(problem.model, problem.net, nudged[1])
    gradient = Dict{String, Any}()
    for (name, value) in g_free
        gradient[name] = (g_nudged[name] .- value) ./ beta
    end
    return gradient, free, nudged
end

"""
    trajectory(model, params, phi0, clamped, outputs, targets, beta, times; solver = "tsit5",
               rtol = 1e-8, atol = 1e-8, max_steps = 1_000_000) -> (phis, ok)

Integrate the (nudged) flow of [`relax`](@ref) from each column of `phi0` and return the states at
`times` (from t = 0): phis is N × T × B (NaN for a failed state), ok a Vector{Bool} per state.
"""
function trajectory(
    model::AbstractString,
    params::AbstractDict,
    phi0::AbstractMatrix,
    clamped::AbstractVector,
    outputs::AbstractVector,
    targets::AbstractMatrix,
    beta::Real,
    times::AbstractVector;
    solver::AbstractString = "tsit5",
    rtol::Real = 1.0e-8,
    atol::Real = 1.0e-8,
    max_steps::Integer = 1_000_000,
)
    beta >= 0 || throw(ArgumentError("beta must be >= 0, got $beta"))
    problem = relax_batch_problem(model, params, phi0, clamped, outputs, targets)
    ts = check_times(times)
    alg = ode_algorithm(solver)
    n, B = size(problem.phi0)
    T = length(ts)
    phis = fill(NaN, n, T, B)
    ok = fill(false, B)
    Threads.@threads for b in 1:B
        flow = RelaxFlow(
            problem.net,
            problem.clamped,
            problem.outputs,
            problem.targets[:, b],
            Float64(beta),
        )
        # SciMLBase v3: ODEFunction{iip, specialize}(f) and ODEProblem(f, u0, tspan).
        f = ODEFunction{true, SciMLBase.FullSpecialize}(flow)
        prob = ODEProblem(f, problem.phi0[:, b], (0.0, ts[end]))
        # OrdinaryDiffEq v7: saveat = ts saves exactly there (t = 0 only if it is in ts).
        sol = solve(
            prob,
            alg;
            saveat = ts,
            reltol = rtol,
            abstol = atol,
            maxiters = max_steps,
        )
        good = SciMLBase.successful_retcode(sol) && length(sol.u) == T
        if good
            for i in 1:T
                phis[:, i, b] .= sol.u[i]
            end
        end
        ok[b] = good
    end
    return phis, ok
end
