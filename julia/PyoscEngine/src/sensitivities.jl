# Gradients of output-phase losses (pyosc/engines/jax_dynamics.py): through the solve at a final
# time (continuous adjoints of SciMLSensitivity, or ForwardDiff forward mode for few parameters),
# and at stable steady states by the implicit-function theorem (SciMLSensitivity's
# SteadyStateAdjoint). Losses are means over the batch of the per-trajectory output cost
# (pyosc.engines.base.FinalLoss); the gradient covers every trainable parameter (not the tables).
#
# VJP choice. The adjoints need products λ' ∂f/∂u and λ' ∂f/∂θ of the model right-hand sides:
#  * "*-forwarddiff" (`autojacvec = false`, `autodiff = true`): dense Jacobians by ForwardDiff
#    (SciMLSensitivity v7.112 src/derivative_wrappers.jl: `_vecjacobian!(..., ::Bool, ...)` calls
#    `jacobian!`, i.e. `ForwardDiff.jacobian!` when `alg_autodiff`; the docstring's "false:
#    FiniteDiff" applies with `autodiff = false` only). It needs nothing but the eltype-generic
#    models (the averaged model's table lookup has value-dependent indexing, which rules out
#    `ReverseDiffVJP(true)`'s compiled tape) and costs about (N d + P) / chunk right-hand-side
#    evaluations per product: cheap for pyosc's networks (tens of cells). This is the default.
#  * "*-enzyme" (`autojacvec = EnzymeVJP()`): reverse mode by Enzyme, the fastest for large
#    networks; the right-hand sides are non-allocating scalar loops without BLAS calls, the subset
#    the EnzymeVJP docstring names as supported.
# BacksolveAdjoint is not offered: it re-integrates the state backward in time, and self-oscillators
# contract onto their limit cycle, so the backward state grows errors (see IntegrateOptions in
# pyosc/engines/base.py). GaussAdjoint and InterpolatingAdjoint read the stored dense forward
# solution instead.

"""Names of the final-state gradient methods (keyword `sensealg`)."""
const FINAL_SENSEALGS = (
    "auto",
    "forward",
    "gauss-forwarddiff",
    "gauss-enzyme",
    "interpolating-forwarddiff",
    "interpolating-enzyme",
)

"""Names of the steady-state gradient methods (keyword `sensealg`)."""
const STEADY_SENSEALGS = ("auto", "steadystate-forwarddiff", "steadystate-enzyme", "dense")

"""
    adjoint_algorithm(name)

The SciMLSensitivity v7 adjoint for a final-state method name (see the VJP note above).
"""
function adjoint_algorithm(name::AbstractString)
    # SciMLSensitivity v7.112 (src/sensitivity_algorithms.jl): GaussAdjoint(; chunk_size,
    # autodiff, diff_type, autojacvec, checkpointing, diff_tunables) and InterpolatingAdjoint(;
    # chunk_size, autodiff, diff_type, autojacvec, checkpointing, noisemixing); EnzymeVJP(; chunksize, mode).
    name == "gauss-forwarddiff" && return GaussAdjoint(autodiff = true, autojacvec = false)
    name == "gauss-enzyme" && return GaussAdjoint(autojacvec = EnzymeVJP())
    name == "interpolating-forwarddiff" &&
        return InterpolatingAdjoint(autodiff = true, autojacvec = false)
    name == "interpolating-enzyme" && return InterpolatingAdjoint(autojacvec = EnzymeVJP())
    throw(ArgumentError("unknown sensealg \"$name\"; use one of $FINAL_SENSEALGS"))
end

"""
    final_gradient(rhs, u0, θ, t1, alg, options, outputs, target, kind, mode, rtol, atol)
        -> (cost, gradient, ok)

Cost of one trajectory's output phases at t1 and its gradient with respect to θ.
"""
function final_gradient(
    rhs,
    u0::Vector{Float64},
    θ::Vector{Float64},
    t1::Float64,
    alg,
    options::NamedTuple,
    outputs::Vector{Int},
    target::Vector{Float64},
    kind::String,
    mode::String,
    rtol::Float64,
    atol::Float64,
)
    cost(y, q) = output_cost(rhs, y, q, t1, outputs, target, kind)
    # SciMLBase v3: ODEFunction{iip, specialize}(f) and ODEProblem(f, u0, tspan, p).
    f = ODEFunction{true, SciMLBase.FullSpecialize}(rhs)
    prob = ODEProblem(f, u0, (0.0, t1), θ)
    if mode == "forward"
        # OrdinaryDiffEq v7: save only the end (save_everystep = false, save_start = false).
        sol = solve(prob, alg; save_everystep = false, save_start = false, options...)
        SciMLBase.successful_retcode(sol) || return (NaN, fill(NaN, length(θ)), false)
        c = cost(sol.u[end], θ)
        function loss(q)
            # The same solve with dual numbers: u0 is promoted to the parameters' element type
            # (the pattern of SciMLSensitivity v7's tests: remake(prob; u0 = convert.(eltype(p), u0), p)).
            dual_prob = ODEProblem(f, convert.(eltype(q), u0), (0.0, t1), q)
            dual_sol = solve(
                dual_prob,
                alg;
                save_everystep = false,
                save_start = false,
                options...,
            )
            return cost(dual_sol.u[end], q)
        end
        # ForwardDiff v1.4: gradient(f, x) (forward mode, chunked duals).
        return c, ForwardDiff.gradient(loss, θ), true
    end
    # Dense forward solution (every step saved with its interpolant): GaussAdjoint and
    # InterpolatingAdjoint evaluate u(t) from it during the backward pass.
    # OrdinaryDiffEq v7: solve(prob, alg; <step options>) with the default saving (every step,
    # dense); SciMLBase v3 successful_retcode(sol).
    sol = solve(prob, alg; options...)
    SciMLBase.successful_retcode(sol) || return (NaN, fill(NaN, length(θ)), false)
    y1 = sol.u[end]
    c = cost(y1, θ)
    function dgdu!(out, u, p, t, i)
        out .= ForwardDiff.gradient(y -> cost(y, θ), u)
        return nothing
    end
    # SciMLSensitivity v7.112 (src/sensitivity_interface.jl): adjoint_sensitivities(sol, alg; t,
    # dgdu_discrete = (out, u, p, t, i) -> ..., sensealg, abstol, reltol) -> (du0, dp), dp = dG/dp'
    # (a 1 × P adjoint) for G = sum_i g(u(t_i)); here one discrete cost at t = t1.
    _, dp = adjoint_sensitivities(
        sol,
        alg;
        t = [t1],
        dgdu_discrete = dgdu!,
        sensealg = adjoint_algorithm(mode),
        abstol = atol,
        reltol = rtol,
    )
    # The readout may depend on θ directly (the microscopic phase on frame and ubar).
    return c, vec(dp) .+ ForwardDiff.gradient(q -> cost(y1, q), θ), true
end

function loss_setup(
    batch::DynamicsBatch,
    targets::AbstractMatrix,
    outputs::AbstractVector,
    kind::AbstractString,
)
    kind in LOSS_KINDS ||
        throw(ArgumentError("unknown loss kind \"$kind\"; use \"distance\" or \"log\""))
    outs = unit_indices(outputs, batch.n, "outputs")
    isempty(outs) && throw(ArgumentError("outputs must name at least one unit"))
    B = size(batch.y0, 3)
    size(targets) == (length(outs), B) ||
        throw(ArgumentError(
            "targets must be n_outputs × B = $((length(outs), B)), got size $(size(targets))",
        ))
    return outs, Matrix{Float64}(targets)
end

"""
    final_state_loss_and_grad(model, params, y0, inputs, targets, outputs, t1; kind = "distance",
        solver = "tsit5", rtol = 1e-8, atol = 1e-8, max_steps = 100_000, dt = 0.0,
        sensealg = "auto") -> (loss, gradient, ok)

Loss = mean over the trajectories (columns of y0, d × N × B) of the cost of the output phases
(0-based unit indices `outputs`) at time `t1` against `targets` (n_out × B), and its gradient with
respect to every trainable parameter (a Dict shaped like `params`, without tables). `sensealg`:
"forward" (ForwardDiff through the solve), "gauss-forwarddiff", "gauss-enzyme",
"interpolating-forwarddiff", "interpolating-enzyme" (continuous adjoints, see the VJP note), or
"auto" = "forward" when parameters + states <= 100, else "gauss-forwarddiff". `ok`: Vector{Bool}
per trajectory (a failed one makes loss and gradient NaN).
"""
function final_state_loss_and_grad(
    model::AbstractString,
    params::AbstractDict,
    y0::AbstractArray,
    inputs::AbstractMatrix,
    targets::AbstractMatrix,
    outputs::AbstractVector,
    t1::Real;
    kind::AbstractString = "distance",
    solver::AbstractString = "tsit5",
    rtol::Real = 1.0e-8,
    atol::Real = 1.0e-8,
    max_steps::Integer = 100_000,
    dt::Real = 0.0,
    sensealg::AbstractString = "auto",
)
    (t1 > 0 && isfinite(t1)) ||
        throw(ArgumentError("t1 must be a finite time > 0, got $t1"))
    sensealg in FINAL_SENSEALGS ||
        throw(ArgumentError("unknown sensealg \"$sensealg\"; use one of $FINAL_SENSEALGS"))
    batch = dynamics_batch(model, params, y0, inputs)
    outs, tg = loss_setup(batch, targets, outputs, kind)
    alg = ode_algorithm(solver)
    options = step_options(rtol, atol, max_steps, dt)
    d, n, B = size(batch.y0)
    P = length(batch.θ)
    mode = String(sensealg)
    if mode == "auto"
        mode = P + d * n <= 100 ? "forward" : "gauss-forwarddiff"
    end
    costs = zeros(B)
    grads = zeros(P, B)
    ok = fill(false, B)
    Threads.@threads for b in 1:B
        c, g, good = final_gradient(
            batch_rhs(batch, b),
            batch_u0(batch, b),
            batch.θ,
            Float64(t1),
            alg,
            options,
            outs,
            tg[:, b],
            String(kind),
            mode,
            Float64(rtol),
            Float64(atol),
        )
        costs[b] = c
        grads[:, b] .= g
        ok[b] = good
    end
    loss = sum(costs) / B
    return loss, unpack_params(batch.spec, vec(sum(grads; dims = 2)) ./ B, n), ok
end

"""
    pseudo_transient(rhs, θ, y0, tol, max_iter, dt0) -> (y, converged)

A stable steady state of dy/dt = f(y) (pyosc.engines.jax_dynamics._steady_state): implicit-Euler
steps (I/dt - J) dy = f(y) with the Jacobian by ForwardDiff; dt grows as the residual falls (switched
evolution relaxation, factor in [1/10, 10], at most 1e12); a step whose residual grows tenfold is
rejected (dt / 4). Converged: max |f| <= tol and every Jacobian eigenvalue has negative real part.
"""
function pseudo_transient(
    rhs,
    θ::Vector{Float64},
    y0::Vector{Float64},
    tol::Float64,
    max_iter::Int,
    dt0::Float64,
)
    function f(y)
        dy = similar(y)
        rhs(dy, y, θ, 0.0)
        return dy
    end
    norm_inf(r) = maximum(abs, r; init = 0.0)
    y = copy(y0)
    r = f(y)
    dt = dt0
    k = 0
    while k < max_iter && norm_inf(r) > tol
        # ForwardDiff v1.4: jacobian(f, x) for an out-of-place f.
        J = ForwardDiff.jacobian(f, y)
        A = lu(I / dt - J; check = false)
        y_new = issuccess(A) ? y + A \ r : fill(NaN, length(y))
        r_new = f(y_new)
        if all(isfinite, r_new) && norm_inf(r_new) < 10 * norm_inf(r)
            grow = clamp(norm_inf(r) / max(norm_inf(r_new), 1.0e-300), 0.1, 10.0)
            y, r, dt = y_new, r_new, min(dt * grow, 1.0e12)
        else
            dt = min(dt / 4, 1.0e12)
        end
        k += 1
    end
    J = ForwardDiff.jacobian(f, y)
    stable = all(isfinite, J) && (isempty(J) || maximum(real, eigvals(J)) < 0)
    return y, norm_inf(r) <= tol && stable
end

"""
    implicit_gradient(rhs, θ, y, cost, mode) -> gradient

dL/dθ at a steady state y (f(y, θ) = 0) by the implicit-function theorem: J' λ = dL/dy,
dL/dθ = -λ' ∂f/∂θ (+ ∂L/∂θ of the readout).
"""
function implicit_gradient(rhs, θ::Vector{Float64}, y::Vector{Float64}, cost, mode::String)
    direct = ForwardDiff.gradient(q -> cost(y, q), θ)
    if mode == "dense"
        # The same linear algebra as the JAX engine, with ForwardDiff Jacobians (no SciMLSensitivity).
        function f_of_params(q)
            dy = similar(y, eltype(q))
            rhs(dy, y, q, 0.0)
            return dy
        end
        function f_of_state(v)
            dy = similar(v)
            rhs(dy, v, θ, 0.0)
            return dy
        end
        λ = ForwardDiff.jacobian(f_of_state, y)' \ ForwardDiff.gradient(v -> cost(v, θ), y)
        return direct .- ForwardDiff.jacobian(f_of_params, θ)' * λ
    end
    # SciMLBase v3 (src/problems/steady_state_problems.jl): SteadyStateProblem(f::AbstractODEFunction, u0, p).
    prob = SteadyStateProblem(ODEFunction{true, SciMLBase.FullSpecialize}(rhs), y, θ)
    resid = similar(y)
    rhs(resid, y, θ, 0.0)
    # SciMLBase v3 (src/solutions/nonlinear_solutions.jl, @public): build_solution(prob::
    # AbstractNonlinearProblem, alg, u, resid; retcode): the steady state we found, as a solution
    # object (a SteadyStateProblem is an AbstractNonlinearProblem in v3).
    sol = SciMLBase.build_solution(
        prob,
        nothing,
        y,
        resid;
        retcode = SciMLBase.ReturnCode.Success,
    )
    function dgdu!(out, u, p, t, i)
        out .= ForwardDiff.gradient(v -> cost(v, θ), u)
        return nothing
    end
    # SciMLSensitivity v7.112 (src/sensitivity_interface.jl, src/steadystate_adjoint.jl):
    # adjoint_sensitivities(sol, alg; sensealg = SteadyStateAdjoint(...), dgdu) -> dG/dp, where dgdu
    # is called as dgdu(out, u, p, nothing, nothing); alg = nothing is allowed (adjoint_common.jl
    # checks `alg === nothing`). SteadyStateAdjoint(; chunk_size, autodiff, diff_type, autojacvec,
    # linsolve, linsolve_kwargs, diff_tunables): with linsolve = nothing it factorises the dense
    # Jacobian for up to 50 states and solves matrix-free (Krylov, VJPs by autojacvec) above that.
    sensealg = if mode == "steadystate-forwarddiff"
        SteadyStateAdjoint(autodiff = true, autojacvec = false)
    else
        SteadyStateAdjoint(autojacvec = EnzymeVJP())
    end
    dp = adjoint_sensitivities(sol, nothing; sensealg = sensealg, dgdu = dgdu!)
    return direct .+ vec(dp)
end

"""
    steady_state_loss_and_grad(model, params, y0, inputs, targets, outputs; kind = "distance",
        tol = 1e-10, max_iter = 200, dt0 = 10.0, sensealg = "auto") -> (loss, gradient, converged)

Loss on the output phases at the stable steady state reached from each trajectory of `y0`
(d × N × B) of an autonomous model ("optomech-averaged", "optomech-phase"), and its gradient by the
implicit-function theorem. A state that reaches no stable fixed point counts with the mean cost of
random outputs and contributes no gradient (the mean is still over all B states). `sensealg`:
"steadystate-forwarddiff" (SteadyStateAdjoint with ForwardDiff Jacobians), "steadystate-enzyme"
(SteadyStateAdjoint with Enzyme VJPs), "dense" (the same formula without SciMLSensitivity), or
"auto" = "steadystate-forwarddiff" for up to 50 states (where SteadyStateAdjoint factorises the
dense Jacobian), else "dense". `converged`: Vector{Bool} per state.
"""
function steady_state_loss_and_grad(
    model::AbstractString,
    params::AbstractDict,
    y0::AbstractArray,
    inputs::AbstractMatrix,
    targets::AbstractMatrix,
    outputs::AbstractVector;
    kind::AbstractString = "distance",
    tol::Real = 1.0e-10,
    max_iter::Integer = 200,
    dt0::Real = 10.0,
    sensealg::AbstractString = "auto",
)
    sensealg in STEADY_SENSEALGS ||
        throw(ArgumentError("unknown sensealg \"$sensealg\"; use one of $STEADY_SENSEALGS"))
    (tol > 0 && dt0 > 0 && max_iter >= 1) ||
        throw(ArgumentError(
            "tol and dt0 must be > 0 and max_iter >= 1, got $tol, $dt0, $max_iter",
        ))
    batch = dynamics_batch(model, params, y0, inputs)
    batch.spec.autonomous ||
        throw(ArgumentError(
            "\"$model\" is driven explicitly in time and has no steady states; use an averaged or phase model",
        ))
    outs, tg = loss_setup(batch, targets, outputs, kind)
    d, n, B = size(batch.y0)
    P = length(batch.θ)
    mode = String(sensealg)
    if mode == "auto"
        mode = d * n <= 50 ? "steadystate-forwarddiff" : "dense"
    elseif mode == "steadystate-forwarddiff" && d * n > 50
        # above 50 states SteadyStateAdjoint (linsolve = nothing) solves matrix-free, and with
        # autojacvec = false its VJPs would be finite differences (get_autodiff_from_vjp(false))
        throw(ArgumentError(
            "sensealg \"steadystate-forwarddiff\" is for up to 50 states; use \"dense\"",
        ))
    end
    costs = zeros(B)
    grads = zeros(P, B)
    converged = fill(false, B)
    Threads.@threads for b in 1:B
        rhs = batch_rhs(batch, b)
        target = tg[:, b]
        cost(y, q) = output_cost(rhs, y, q, 0.0, outs, target, String(kind))
        y, good = pseudo_transient(
            rhs,
            batch.θ,
            batch_u0(batch, b),
            Float64(tol),
            Int(max_iter),
            Float64(dt0),
        )
        if good
            costs[b] = cost(y, batch.θ)
            grads[:, b] .= implicit_gradient(rhs, batch.θ, y, cost, mode)
        else
            costs[b] = chance_cost(kind, length(outs))
        end
        converged[b] = good
    end
    loss = sum(costs) / B
    return loss, unpack_params(batch.spec, vec(sum(grads; dims = 2)) ./ B, n), converged
end
