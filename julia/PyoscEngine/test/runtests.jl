# The Julia engine's test suite: physics and derivative checks of every model and entry point, then
# a replay of the golden vectors in test/golden/ (written from the JAX engine; format in
# test/golden/README.md). Run with `julia --project=julia/PyoscEngine -e 'using Pkg; Pkg.test()'`.

using PyoscEngine
using Test
using JSON

const PE = PyoscEngine
const FD = PyoscEngine.ForwardDiff
const LA = PyoscEngine.LinearAlgebra
const GOLDEN = joinpath(@__DIR__, "golden")

# --- fixtures (deterministic, no random numbers) ------------------------------------------------

"""A symmetric N × N coupling matrix with a zero diagonal."""
function couplings(n; scale = 0.8)
    W = [scale * (sin(1.3i + 0.7j) + sin(1.3j + 0.7i)) / 2 for i in 1:n, j in 1:n]
    for i in 1:n
        W[i, i] = 0.0
    end
    return W
end

const N = 5
const B = 4
const XY = Dict{String, Any}(
    "W" => couplings(N),
    "h" => [0.3 * cos(i) for i in 1:N],
    "psi" => [0.5 * i for i in 1:N],
)
const ONN_ODD = Dict{String, Any}(
    "W" => couplings(N),
    "h" => [0.3 * cos(i) for i in 1:N],
    "psi" => [0.5 * i for i in 1:N],
    "omega" => [0.02 * sin(i) for i in 1:N],
    "shil" => fill(0.1, N),
    "sin" => [1.0, -0.2, 0.05],
    "cos" => zeros(4),
)
const ONN_EVEN = merge(ONN_ODD, Dict{String, Any}("cos" => [0.02, 0.1, 0.0, 0.01]))
const PHI0 = [0.4 * sin(k * b + 0.3) for k in 1:N, b in 1:B]
const CLAMPED = [true, true, false, false, false]
const OUTPUTS = [N - 1] # 0-based: the last unit
const TARGETS = [0.3 * b for _ in 1:1, b in 1:B]
const NET = (PHI0, CLAMPED, OUTPUTS, TARGETS) # the arguments after `params` of relax & co.

"""The amplitude table of a Stuart-Landau cell: g = 0.01 (1 - s/4), dOmega = 0.002 s (exact under Hermite)."""
function stuart_landau_table(s_max, m)
    s = collect(range(0.0, s_max; length = m))
    return Dict{String, Any}(
        "growth" => 0.01 .* (1 .- s ./ 4),
        "growth_ds" => fill(-0.0025, m),
        "shift" => 0.002 .* s,
        "shift_ds" => fill(0.002, m),
    )
end

const AVERAGED = merge(
    stuart_landau_table(16.0, 33),
    Dict{String, Any}(
        "s_max" => 16.0,
        "f_in" => 0.02,
        "frame" => 0.008,
        "f" => [0.02, 0.015],
        "psi" => [0.3, -0.2],
        "K" => [-0.001 0.004; 0.004 -0.001],
    ),
)
const Y0_AVERAGED = [
    (c == 1 ? cos(0.4b + k) : sin(0.4b + k)) * (2 + 0.1k)
    for c in 1:2, k in 1:2, b in 1:3
]

const PHASE = Dict{String, Any}(
    "omega" => 0.01,
    "h_in" => 0.2,
    "b_in" => 0.02,
    "h" => [0.2, 0.1, 0.15],
    "b" => [0.02, 0.01, 0.0],
    "psi" => [0.0, 0.4, -0.3],
    "J" => 0.3 .* couplings(3; scale = 1.0),
    "C" => 0.05 .* couplings(3; scale = 1.0),
)
const Y0_PHASE = [0.3 * sin(2k + b) for _ in 1:1, k in 1:3, b in 1:3]

const MICRO = Dict{String, Any}(
    "kappa" => 2.0,
    "detuning" => 1.0,
    "gamma_m" => 0.01,
    "power" => 0.06,
    "f_in" => 0.004,
    "frame" => 0.00349,
    "ubar" => 0.05,
    "f" => [0.003, 0.002],
    "psi" => [0.1, 0.4],
    "K" => [-0.001 0.002; 0.002 -0.001],
)
const Y0_MICRO = reshape(
    [
        v
        for b in 1:2
        for v in (0.4, 0.3 + 0.1b, 0.05 + 1.9cos(b), -1.9sin(b), 0.2, 0.5, 0.05 - 1.9, 0.1b)
    ],
    4,
    2,
    2,
)

const INPUTS_1 = [0.2 * b for _ in 1:1, b in 1:3]

"""A copy of `params` with entry `idx` of parameter `name` shifted by `delta` (numbers: idx = ())."""
function shifted(params, name, idx, delta)
    out = copy(params)
    value = params[name]
    if value isa Number
        out[name] = value + delta
    else
        v = copy(value)
        v[idx...] += delta
        out[name] = v
    end
    return out
end

"""Central finite difference of `loss(params)` in entry `idx` of `name`."""
function central_difference(loss, params, name, idx; h = 1.0e-4)
    return (loss(shifted(params, name, idx, h)) - loss(shifted(params, name, idx, -h))) /
        (2h)
end

"""A copy of `params` with the coupling pair W[i, j] = W[j, i] shifted by `delta`."""
function with_pair(params, i, j, delta)
    W = copy(params["W"])
    W[i, j] += delta
    W[j, i] += delta
    return merge(params, Dict{String, Any}("W" => W))
end

"""One index per parameter kind: () for numbers, the first entry of vectors, [1, 2] of matrices."""
probe_index(value) = value isa Number ? () : (ndims(value) == 1 ? (1,) : (1, 2))

# --- models ---------------------------------------------------------------------------------------

@testset "phase-network energy, force and Hessian" begin
    phi = [0.3, -1.1, 2.0, 0.7, -0.4]
    for (model, params) in (("xy", XY), ("onn", ONN_ODD))
        net = PE.phase_network(model, params)
        E(p) = PE.energy(net, p)
        g = PE.energy_gradient!(zeros(N), net, phi)
        @test isapprox(g, FD.gradient(E, phi); rtol = 1.0e-12, atol = 1.0e-12)
        H = PE.energy_hessian!(zeros(N, N), net, phi)
        @test isapprox(H, FD.hessian(E, phi); rtol = 1.0e-12, atol = 1.0e-12)
        @test isapprox(H, H'; rtol = 0, atol = 1.0e-15)
        @test isapprox(PE.velocity!(zeros(N), net, phi), -g; rtol = 1.0e-12, atol = 1.0e-14)
    end
    # XY is the phase model with H = sin
    xy_net = PE.phase_network("xy", XY)
    as_onn = merge(
        XY,
        Dict{String, Any}(
            "omega" => zeros(N),
            "shil" => zeros(N),
            "sin" => [1.0],
            "cos" => zeros(2),
        ),
    )
    onn_net = PE.phase_network("onn", as_onn)
    @test PE.energy(xy_net, phi) ≈ PE.energy(onn_net, phi)
    # an even part of H adds a velocity but no energy
    even = PE.phase_network("onn", ONN_EVEN)
    @test !PE.has_energy(even) && PE.has_energy(PE.phase_network("onn", ONN_ODD))
    v_even = PE.velocity!(zeros(N), even, phi)
    v_odd = PE.velocity!(zeros(N), PE.phase_network("onn", ONN_ODD), phi)
    @test !isapprox(v_even, v_odd)
    # log cost derivatives
    for d in (-2.0, -0.3, 0.0, 1.1)
        @test PE.log_cost_grad(d) ≈ FD.derivative(PE.log_cost, d)
        @test PE.log_cost_curvature(d) ≈ FD.derivative(PE.log_cost_grad, d)
    end
end

@testset "EP parameter derivatives of the energy" begin
    phis = PHI0
    for (model, params) in (("xy", XY), ("onn", ONN_ODD))
        net = PE.phase_network(model, params)
        grads = PE.energy_param_gradient(model, net, phis)
        function mean_energy(p)
            net_p = PE.phase_network(model, p)
            return sum(PE.energy(net_p, phis[:, s]) for s in 1:B) / B
        end
        @test grads["W"] == grads["W"]'
        @test all(iszero, LA.diag(grads["W"]))
        # per pair: the derivative for shifting W[i, j] and W[j, i] together
        h = 1.0e-6
        up, down = mean_energy(with_pair(params, 2, 4, h)),
            mean_energy(with_pair(params, 2, 4, -h))
        fd_W = (up - down) / (2h)
        @test isapprox(grads["W"][2, 4], fd_W; rtol = 1.0e-6, atol = 1.0e-9)
        for name in (model == "xy" ? ("h", "psi") : ("h", "psi", "omega", "shil"))
            fd = central_difference(mean_energy, params, name, (3,); h = 1.0e-6)
            @test isapprox(grads[name][3], fd; rtol = 1.0e-6, atol = 1.0e-9)
        end
    end
end

@testset "dynamical right-hand sides: duals and finite differences" begin
    for (model, params, y0, inputs) in (
            ("optomech-micro", MICRO, Y0_MICRO, INPUTS_1[:, 1:2]),
            ("optomech-averaged", AVERAGED, Y0_AVERAGED, INPUTS_1),
            ("optomech-phase", PHASE, Y0_PHASE, INPUTS_1),
        )
        batch = PE.dynamics_batch(model, params, y0, inputs)
        rhs = PE.batch_rhs(batch, 2)
        u = PE.batch_u0(batch, 2)
        θ = batch.θ
        t = 0.7
        f_u(v) = (dy = similar(v); rhs(dy, v, θ, t); dy)
        f_p(q) = (dy = similar(u, eltype(q)); rhs(dy, u, q, t); dy)
        Ju = FD.jacobian(f_u, u)
        Jp = FD.jacobian(f_p, θ)
        h = 1.0e-6
        for i in eachindex(u)
            e = zeros(length(u))
            e[i] = h
            @test isapprox(
                Ju[:, i],
                (f_u(u + e) - f_u(u - e)) / (2h);
                rtol = 1.0e-6,
                atol = 1.0e-9,
            )
        end
        for i in eachindex(θ)
            e = zeros(length(θ))
            e[i] = h
            @test isapprox(
                Jp[:, i],
                (f_p(θ + e) - f_p(θ - e)) / (2h);
                rtol = 1.0e-6,
                atol = 1.0e-9,
            )
        end
        # packing round trip and layout
        spec = PE.dynamics_spec(model)
        @test length(θ) == PE.n_params(spec, batch.n)
        back = PE.unpack_params(spec, θ, batch.n)
        for (name, value) in back
            @test value == params[name]
        end
    end
    # the right-hand sides read their scalars by position: the spec order must not change
    @test PE.DYNAMICS["optomech-micro"].scalars ==
        ["kappa", "detuning", "gamma_m", "power", "f_in", "frame", "ubar"]
    @test PE.DYNAMICS["optomech-averaged"].scalars == ["s_max", "f_in", "frame"]
    @test PE.DYNAMICS["optomech-phase"].scalars == ["omega", "h_in", "b_in"]
    # Hermite interpolation is exact for the linear Stuart-Landau table
    table = PE.amplitude_table(AVERAGED)
    for s in (0.0, 0.37, 4.0, 9.99)
        g, w = PE.interpolate_table(table, 16.0, s)
        @test isapprox(g, 0.01 * (1 - s / 4); atol = 1.0e-15)
        @test isapprox(w, 0.002 * s; atol = 1.0e-15)
    end
end

# --- relaxation and EP ------------------------------------------------------------------------------

@testset "relax: clamped units fixed, converged, energy lowered" begin
    for (model, params) in (("xy", XY), ("onn", ONN_ODD))
        net = PE.phase_network(model, params)
        for beta in (0.0, 0.2)
            phi, converged, force, work = relax(model, params, NET..., beta; tol = 1.0e-10)
            @test size(phi) == size(PHI0)
            @test converged isa Vector{Bool} && all(converged)
            @test phi[CLAMPED, :] == PHI0[CLAMPED, :]
            @test all(force .<= 1.0e-10)
            @test all(work .>= 1)
            F(p, b) = PE.energy(net, p) +
                (beta > 0 ? beta * PE.log_cost(p[N] - TARGETS[1, b]) : 0.0)
            @test all(F(phi[:, b], b) <= F(PHI0[:, b], b) for b in 1:B)
            # stable: the free-unit Hessian of F is positive definite
            free = findall(!, CLAMPED)
            for b in 1:B
                H = PE.energy_hessian!(zeros(N, N), net, phi[:, b])[free, free]
                beta > 0 &&
                    (H[end, end] += beta * PE.log_cost_curvature(phi[N, b] - TARGETS[1, b]))
                @test LA.isposdef(LA.Symmetric(H))
            end
            # the ODE relaxation has the same fixed points: started there it stays
            phi_o, conv_o, force_o, t_end = relax(
                model,
                params,
                phi,
                CLAMPED,
                OUTPUTS,
                TARGETS,
                beta;
                method = "ode",
                tol = 1.0e-8,
                rtol = 1.0e-10,
                atol = 1.0e-10,
            )
            @test all(conv_o)
            @test maximum(abs, phi_o - phi) < 1.0e-7
            # a batch is the same as its states one by one
            single = relax(
                model,
                params,
                PHI0[:, 3:3],
                CLAMPED,
                OUTPUTS,
                TARGETS[:, 3:3],
                beta;
                tol = 1.0e-10,
            )
            @test single[1][:, 1] == phi[:, 3]
        end
    end
    # the ODE relaxation from the initial states reaches stable equilibria
    phi_o, conv_o, force_o, t_end = relax(
        "xy",
        XY,
        NET...,
        0.0;
        method = "ode",
        tol = 1.0e-8,
        rtol = 1.0e-10,
        atol = 1.0e-10,
        solver = "Tsit5",
    )
    @test all(conv_o) && all(force_o .< 1.0e-8) && all(t_end .< 1.0e4)
    phi_n, conv_n = relax("xy", XY, phi_o, CLAMPED, OUTPUTS, TARGETS, 0.0; tol = 1.0e-12)
    @test all(conv_n) && maximum(abs, phi_n - phi_o) < 1.0e-6
    # an even H has no energy: only the ODE relaxation applies
    @test_throws ArgumentError relax("onn", ONN_EVEN, NET..., 0.0)
    phi_e, conv_e = relax(
        "onn",
        ONN_EVEN,
        NET...,
        0.0;
        method = "ode",
        tol = 1.0e-8,
        rtol = 1.0e-10,
        atol = 1.0e-10,
    )
    v = zeros(N)
    for b in 1:B
        conv_e[b] || continue
        PE.velocity!(v, PE.phase_network("onn", ONN_EVEN), phi_e[:, b])
        @test maximum(abs, v[.!CLAMPED]) < 1.0e-8
    end
    # bad input is rejected with a message
    @test_throws ArgumentError relax("xy", XY, PHI0[1:3, :], CLAMPED, OUTPUTS, TARGETS, 0.0)
    @test_throws ArgumentError relax("xy", XY, PHI0, CLAMPED, [0], TARGETS, 0.1)
    @test_throws ArgumentError relax("xy", XY, NET..., 0.0; method = "euler")
    @test_throws ArgumentError relax("vdp", XY, NET..., 0.0)
end

@testset "trajectory: energy never increases, clamped units fixed" begin
    times = collect(range(0.0, 30.0; length = 61))
    for (model, params) in (("xy", XY), ("onn", ONN_ODD))
        net = PE.phase_network(model, params)
        phis, ok = trajectory(
            model,
            params,
            NET...,
            0.0,
            times;
            rtol = 1.0e-10,
            atol = 1.0e-10,
        )
        @test size(phis) == (N, length(times), B) && all(ok)
        @test isapprox(phis[:, 1, :], PHI0; atol = 1.0e-14)
        for b in 1:B, i in 1:(length(times) - 1)
            @test PE.energy(net, phis[:, i + 1, b]) <=
                PE.energy(net, phis[:, i, b]) + 1.0e-9
        end
        clamped_rows = reshape(PHI0[CLAMPED, :], :, 1, B)
        @test isapprox(
            phis[CLAMPED, :, :],
            clamped_rows .* ones(1, length(times), 1);
            atol = 1.0e-14,
        )
    end
    # a nudged trajectory ends at the nudged equilibrium
    phis, ok = trajectory("xy", XY, NET..., 0.3, [5.0e3]; rtol = 1.0e-10, atol = 1.0e-10)
    phi, converged = relax(
        "xy",
        XY,
        phis[:, 1, :],
        CLAMPED,
        OUTPUTS,
        TARGETS,
        0.3;
        tol = 1.0e-12,
    )
    @test all(ok) && all(converged) && maximum(abs, phi - phis[:, 1, :]) < 1.0e-3
end

@testset "EP step: gradient approaches the implicit gradient as beta -> 0" begin
    tol = 1.0e-12
    gradient, free, nudged = ep_step("xy", XY, NET..., 1.0e-4; tol = tol, max_iter = 500)
    @test all(free[2]) && all(nudged[2])
    @test Set(keys(gradient)) == Set(["W", "h", "psi"])
    function loss(params)
        phi = relax(
            "xy",
            params,
            free[1],
            CLAMPED,
            OUTPUTS,
            TARGETS,
            0.0;
            tol = tol,
            max_iter = 500,
        )[1]
        return sum(PE.log_cost(phi[N, b] - TARGETS[1, b]) for b in 1:B) / B
    end
    for (name, idx) in (("h", (4,)), ("psi", (5,)))
        @test isapprox(
            gradient[name][idx...],
            central_difference(loss, XY, name, idx);
            rtol = 1.0e-2,
            atol = 1.0e-6,
        )
    end
    # a coupling: EP's per-pair derivative shifts W[i, j] and W[j, i] together
    h = 1.0e-5
    fd = (loss(with_pair(XY, 3, 5, h)) - loss(with_pair(XY, 3, 5, -h))) / (2h)
    @test isapprox(gradient["W"][3, 5], fd; rtol = 1.0e-2, atol = 1.0e-6)
    # ONN: every parameter name, zero for the fixed coefficients
    g_onn, _, _ = ep_step("onn", ONN_ODD, NET..., 0.1)
    @test Set(keys(g_onn)) == Set(["W", "h", "psi", "omega", "shil", "sin", "cos"])
    @test all(iszero, g_onn["sin"]) && all(iszero, g_onn["cos"])
    @test_throws ArgumentError ep_step("xy", XY, NET..., 0.0)
end

# --- integration and gradients ------------------------------------------------------------------------

const DYNAMICAL_CASES = (
    ("optomech-micro", MICRO, Y0_MICRO, INPUTS_1[:, 1:2], 3.0),
    ("optomech-averaged", AVERAGED, Y0_AVERAGED, INPUTS_1, 40.0),
    ("optomech-phase", PHASE, Y0_PHASE, INPUTS_1, 20.0),
)

@testset "integrate: solvers agree, layout, fixed steps" begin
    for (model, params, y0, inputs, t1) in DYNAMICAL_CASES
        times = [0.0, t1 / 3, t1]
        ref, ok = integrate(
            model,
            params,
            y0,
            inputs,
            times;
            rtol = 1.0e-11,
            atol = 1.0e-11,
        )
        d, n, nb = size(y0)
        @test size(ref) == (d, n, 3, nb) && all(ok)
        @test isapprox(ref[:, :, 1, :], y0; atol = 1.0e-14)
        for solver in ("Dopri5", "Dopri8", "Kvaerno5", "rodas5p")
            ys, ok2 = integrate(
                model,
                params,
                y0,
                inputs,
                times;
                solver = solver,
                rtol = 1.0e-10,
                atol = 1.0e-10,
            )
            @test all(ok2)
            @test isapprox(ys, ref; rtol = 1.0e-6, atol = 1.0e-7)
        end
        ys, ok3 = integrate(model, params, y0, inputs, times; dt = t1 / 3000)
        @test all(ok3) && isapprox(ys, ref; rtol = 1.0e-6, atol = 1.0e-7)
        # the step budget is reported, not thrown
        _, ok4 = integrate(
            model,
            params,
            y0,
            inputs,
            times;
            max_steps = 2,
            rtol = 1.0e-12,
            atol = 1.0e-12,
        )
        @test !any(ok4)
    end
    @test_throws ArgumentError integrate(
        "optomech-phase",
        PHASE,
        Y0_PHASE,
        INPUTS_1,
        [0.0, 1.0];
        solver = "euler",
    )
    @test_throws ArgumentError integrate(
        "optomech-phase",
        PHASE,
        Y0_PHASE,
        INPUTS_1,
        [1.0, 0.5],
    )
    @test_throws ArgumentError integrate(
        "optomech-phase",
        PHASE,
        Y0_AVERAGED,
        INPUTS_1,
        [1.0],
    )
end

@testset "final-state gradients: forward mode, adjoints, finite differences" begin
    for (model, params, y0, inputs, t1) in DYNAMICAL_CASES, kind in ("distance", "log")
        nb = size(y0, 3)
        targets = [0.4 + 0.1b for _ in 1:1, b in 1:nb]
        outputs = [size(y0, 2) - 1]
        tight = (rtol = 1.0e-11, atol = 1.0e-11)
        L, g, ok = final_state_loss_and_grad(
            model,
            params,
            y0,
            inputs,
            targets,
            outputs,
            t1;
            kind = kind,
            sensealg = "forward",
            tight...,
        )
        @test all(ok) && isfinite(L)
        spec = PE.dynamics_spec(model)
        @test Set(keys(g)) == Set(vcat(spec.scalars, spec.vectors, spec.matrices))
        loss(p) = final_state_loss_and_grad(
            model,
            p,
            y0,
            inputs,
            targets,
            outputs,
            t1;
            kind = kind,
            sensealg = "forward",
            tight...,
        )[1]
        for (name, value) in g
            idx = probe_index(params[name])
            @test isapprox(
                value[idx...],
                central_difference(loss, params, name, idx);
                rtol = 1.0e-4,
                atol = 1.0e-6,
            )
        end
        for sensealg in (
                "gauss-forwarddiff",
                "interpolating-forwarddiff",
                "gauss-enzyme",
                "interpolating-enzyme",
                "auto",
            )
            La, ga, oka = final_state_loss_and_grad(
                model,
                params,
                y0,
                inputs,
                targets,
                outputs,
                t1;
                kind = kind,
                sensealg = sensealg,
                tight...,
            )
            @test all(oka) && La ≈ L
            for (name, value) in g
                @test isapprox(ga[name], value; rtol = 1.0e-5, atol = 1.0e-9)
            end
        end
    end
end

@testset "steady-state gradients: SteadyStateAdjoint, dense IFT, finite differences" begin
    for (model, params, y0, inputs) in (
            ("optomech-averaged", AVERAGED, Y0_AVERAGED, INPUTS_1),
            ("optomech-phase", PHASE, Y0_PHASE, INPUTS_1),
        )
        # start on the attractor (a stable locked state), so that every state converges
        settled, ok = integrate(
            model,
            params,
            y0,
            inputs,
            [5.0e3];
            rtol = 1.0e-10,
            atol = 1.0e-10,
        )
        @test all(ok)
        y0 = settled[:, :, 1, :]
        nb = size(y0, 3)
        targets = [0.2 * b for _ in 1:1, b in 1:nb]
        outputs = [0]
        L, g, converged = steady_state_loss_and_grad(
            model,
            params,
            y0,
            inputs,
            targets,
            outputs;
            tol = 1.0e-12,
            sensealg = "steadystate-forwarddiff",
        )
        @test all(converged)
        for sensealg in ("dense", "steadystate-enzyme", "auto")
            L2, g2, c2 = steady_state_loss_and_grad(
                model,
                params,
                y0,
                inputs,
                targets,
                outputs;
                tol = 1.0e-12,
                sensealg = sensealg,
            )
            @test L2 == L && c2 == converged
            for (name, value) in g
                @test isapprox(g2[name], value; rtol = 1.0e-6, atol = 1.0e-10)
            end
        end
        loss(p) = steady_state_loss_and_grad(
            model,
            p,
            y0,
            inputs,
            targets,
            outputs;
            tol = 1.0e-12,
            sensealg = "dense",
        )[1]
        for (name, value) in g
            idx = probe_index(params[name])
            @test isapprox(
                value[idx...],
                central_difference(loss, params, name, idx);
                rtol = 1.0e-4,
                atol = 1.0e-6,
            )
        end
        # the steady state is one: integrating from it goes nowhere
        batch = PE.dynamics_batch(model, params, y0, inputs)
        rhs = PE.batch_rhs(batch, 1)
        y, good = PE.pseudo_transient(
            rhs,
            batch.θ,
            PE.batch_u0(batch, 1),
            1.0e-12,
            200,
            10.0,
        )
        @test good
        r = similar(y)
        rhs(r, y, batch.θ, 0.0)
        @test maximum(abs, r) <= 1.0e-12
    end
    @test_throws ArgumentError steady_state_loss_and_grad(
        "optomech-micro",
        MICRO,
        Y0_MICRO,
        INPUTS_1[:, 1:2],
        [0.1 0.2],
        [0],
    )
end

@testset "versions" begin
    v = versions()
    @test v["PyoscEngine"] == "0.1.0"
    @test all(
        haskey(v, k)
        for k in (
            "julia",
            "threads",
            "SciMLBase",
            "SciMLSensitivity",
            "OrdinaryDiffEqTsit5",
        )
    )
end

# --- golden vectors ----------------------------------------------------------------------------------

const POSITIONAL = Dict(
    "relax" => ["params", "phi0", "clamped", "outputs", "targets", "beta"],
    "trajectory" => ["params", "phi0", "clamped", "outputs", "targets", "beta", "times"],
    "ep_step" => ["params", "phi0", "clamped", "outputs", "targets", "beta"],
    "integrate" => ["params", "y0", "inputs", "times"],
    "final_state_loss_and_grad" => ["params", "y0", "inputs", "targets", "outputs", "t1"],
    "steady_state_loss_and_grad" => ["params", "y0", "inputs", "targets", "outputs"],
)

const ENTRIES = Dict(
    "relax" => relax,
    "trajectory" => trajectory,
    "ep_step" => ep_step,
    "integrate" => integrate,
    "final_state_loss_and_grad" => final_state_loss_and_grad,
    "steady_state_loss_and_grad" => steady_state_loss_and_grad,
)

"""(entry, model, relax method or nothing) combinations the golden vectors must cover."""
const REQUIRED = [
    [("relax", m, method) for m in ("xy", "onn") for method in ("newton", "ode")]
    [(e, m, nothing) for e in ("trajectory", "ep_step") for m in ("xy", "onn")]
    [
        (e, m, nothing)
        for e in ("integrate", "final_state_loss_and_grad")
        for m in ("optomech-micro", "optomech-averaged", "optomech-phase")
    ]
    [
        ("steady_state_loss_and_grad", m, nothing)
        for m in ("optomech-averaged", "optomech-phase")
    ]
]

function decode_float(x)
    x isa Real && return Float64(x)
    x === nothing && return NaN
    x == "NaN" && return NaN
    x == "Infinity" && return Inf
    x == "-Infinity" && return -Inf
    throw(ArgumentError("not a number: $(repr(x))"))
end

"""A golden-file value as the entry points take it (see golden/README.md)."""
function decode(value)
    if value isa AbstractDict
        if haskey(value, "array")
            shape = Tuple(Int(s) for s in value["shape"])
            kind = value["array"]
            data = value["data"]
            flat = if kind == "float64"
                Float64[decode_float(x) for x in data]
            elseif kind == "int64"
                Int[x for x in data]
            elseif kind == "bool"
                Bool[x for x in data]
            else
                throw(ArgumentError("unknown array kind $(repr(kind))"))
            end
            length(flat) == prod(shape) ||
                throw(ArgumentError("array data does not fill shape $shape"))
            return reshape(flat, shape)
        end
        return Dict{String, Any}(String(k) => decode(v) for (k, v) in value)
    elseif value isa AbstractString
        return value in ("NaN", "Infinity", "-Infinity") ?
            decode_float(value) :
            String(value)
    elseif value isa AbstractVector
        return [decode(v) for v in value]
    end
    return value
end

equilibrium(r) = Dict{String, Any}(
    "phi" => r[1],
    "converged" => r[2],
    "force" => r[3],
    "work" => r[4],
)

"""The results of an entry point by the names of golden/README.md."""
function named_results(entry, r)
    entry == "relax" && return equilibrium(r)
    entry == "trajectory" && return Dict{String, Any}("phis" => r[1], "ok" => r[2])
    entry == "ep_step" &&
        return Dict{String, Any}(
            "gradient" => r[1],
            "free" => equilibrium(r[2]),
            "nudged" => equilibrium(r[3]),
        )
    entry == "integrate" && return Dict{String, Any}("ys" => r[1], "ok" => r[2])
    entry == "final_state_loss_and_grad" &&
        return Dict{String, Any}("loss" => r[1], "gradient" => r[2], "ok" => r[3])
    return Dict{String, Any}("loss" => r[1], "gradient" => r[2], "converged" => r[3])
end

function tolerance(tolerances, path)
    parts = split(path, ".")
    for k in length(parts):-1:1
        key = join(parts[1:k], ".")
        haskey(tolerances, key) && return tolerances[key]
    end
    return get(tolerances, "default", Dict{String, Any}())
end

"""Append to `failures` every result outside its tolerance."""
function compare!(failures, actual, expected, path, tolerances)
    if expected isa AbstractDict
        if !(actual isa AbstractDict)
            push!(failures, "$path: expected a Dict, got $(typeof(actual))")
            return failures
        end
        for (key, value) in expected
            sub = isempty(path) ? key : "$path.$key"
            haskey(actual, key) ?
                compare!(failures, actual[key], value, sub, tolerances) :
                push!(failures, "$sub: missing")
        end
        return failures
    end
    tol = tolerance(tolerances, path)
    get(tol, "skip", false) === true && return failures
    a = actual isa AbstractArray ? actual : fill(actual)
    e = expected isa AbstractArray ? expected : fill(expected)
    if size(a) != size(e)
        push!(failures, "$path: size $(size(a)), expected $(size(e))")
        return failures
    end
    if eltype(e) <: Bool || (eltype(e) <: Integer && eltype(a) <: Integer)
        a == e || push!(failures, "$path: $(count(a .!= e)) of $(length(e)) entries differ")
        return failures
    end
    rtol = Float64(get(tol, "rtol", 0.0))
    atol = Float64(get(tol, "atol", 0.0))
    periodic = get(tol, "periodic", false) === true
    bad, worst = 0, 0.0
    for i in eachindex(e)
        x, y = Float64(a[i]), Float64(e[i])
        if isnan(y) || isnan(x) || isinf(y)
            bad += isequal(x, y) ? 0 : 1
            continue
        end
        diff = periodic ? abs(rem2pi(x - y, RoundNearest)) : abs(x - y)
        if diff > atol + rtol * abs(y)
            bad += 1
            worst = max(worst, diff)
        end
    end
    bad == 0 ||
        push!(
            failures,
            "$path: $bad of $(length(e)) entries outside rtol = $rtol, atol = $atol (worst |diff| $worst)",
        )
    return failures
end

golden_files() = isdir(GOLDEN) ?
    sort(filter(f -> endswith(f, ".json"), readdir(GOLDEN; join = true))) :
    String[]

@testset "golden vectors from the JAX engine" begin
    files = golden_files()
    if isempty(files)
        @info "no golden vectors in $GOLDEN yet (the Python side writes them)"
    end
    covered = Set{Tuple{String, String, Union{Nothing, String}}}()
    for file in files
        @testset "$(basename(file))" begin
            case = JSON.parsefile(file)
            @test case["format"] == "pyosc-golden/1"
            entry = String(case["entry"])
            model = String(case["model"])
            args = decode(case["args"])
            kwargs = decode(get(case, "kwargs", Dict{String, Any}()))
            positional = [args[name] for name in POSITIONAL[entry]]
            result = ENTRIES[entry](
                model,
                positional...;
                (Symbol(k) => v for (k, v) in kwargs)...
            )
            expected = decode(case["expected"])
            tolerances = decode(get(case, "tolerances", Dict{String, Any}()))
            failures = compare!(
                String[],
                named_results(entry, result),
                expected,
                "",
                tolerances,
            )
            isempty(failures) || @error "golden mismatch in $(basename(file))" failures
            @test isempty(failures)
            method = entry == "relax" ? String(get(kwargs, "method", "newton")) : nothing
            push!(covered, (entry, model, method))
        end
    end
    if !isempty(files)
        missing_cases = [c for c in REQUIRED if !(c in covered)]
        isempty(missing_cases) || @error "golden vectors missing for" missing_cases
        @test isempty(missing_cases)
    end
end
