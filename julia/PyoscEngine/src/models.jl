# Models: the equations of pyosc/models/xy.py, pyosc/models/onn.py and pyosc/models/optomech.py,
# ported term by term (same names, same units, same conventions). Every model function is generic
# in the element type of its state and parameter arrays, so ForwardDiff duals (Jacobians of the
# implicit solvers, forward-mode gradients) and adjoint VJPs pass through unchanged. None of them
# allocates except where it says so.

# --- parameter input ---------------------------------------------------------------------------

"""
    param_array(params, name) -> Array{Float64}

A native copy of the parameter `name`: arrays keep their shape, numbers become 0-dim arrays.
"""
function param_array(params::AbstractDict, name::AbstractString)
    haskey(params, name) || throw(ArgumentError("params: missing entry \"$name\""))
    value = params[name]
    if value isa AbstractArray{<:Real}
        return Array{Float64}(value)
    elseif value isa Real
        return fill(Float64(value))
    end
    throw(ArgumentError(
        "params[\"$name\"] must be a real array or number, got $(typeof(value))",
    ))
end

"""A scalar parameter (a number or any array holding exactly one number)."""
function param_scalar(params::AbstractDict, name::AbstractString)
    a = param_array(params, name)
    length(a) == 1 ||
        throw(ArgumentError("params[\"$name\"] must be a scalar, got size $(size(a))"))
    return a[1]
end

"""A vector parameter of length `n` (any length when `n < 0`)."""
function param_vector(params::AbstractDict, name::AbstractString, n::Integer)
    a = param_array(params, name)
    if ndims(a) != 1 || (n >= 0 && length(a) != n)
        want = n >= 0 ? "($n,)" : "(k,)"
        throw(ArgumentError("params[\"$name\"] must have shape $want, got $(size(a))"))
    end
    return Vector{Float64}(a)
end

"""A square matrix parameter, `n` × `n` (any size when `n < 0`), in NumPy's index order."""
function param_matrix(params::AbstractDict, name::AbstractString, n::Integer)
    a = param_array(params, name)
    if ndims(a) != 2 || size(a, 1) != size(a, 2) || (n >= 0 && size(a, 1) != n)
        want = n >= 0 ? "($n, $n)" : "(N, N)"
        throw(ArgumentError("params[\"$name\"] must have shape $want, got $(size(a))"))
    end
    return Matrix{Float64}(a)
end

# --- phase networks: "xy" and "onn" ------------------------------------------------------------

"""
    PhaseNetwork

Parameters of the phase-oscillator models (pyosc/models/onn.py; "xy" is the case `b = [1]`,
`a = [0, 0]`, no detuning, no second-harmonic injection):

    dphi_k/dt = omega_k + sum_j W_kj H(phi_j - phi_k) + h_k sin(psi_k - phi_k) - s_k sin(2 phi_k),
    H(x)      = a_0 + sum_{n=1..M} [a_n cos(n x) + b_n sin(n x)].

For odd H (all `a` zero) this is the gradient flow of

    E(phi) = -1/2 sum_kj W_kj U(phi_k - phi_j) - sum_k h_k cos(phi_k - psi_k) - sum_k omega_k phi_k
             - 1/2 sum_k s_k cos(2 phi_k),    U(x) = sum_n (b_n / n) cos(n x).

`W` symmetric with a zero diagonal; `b` = the Python "sin" coefficients, `a` = "cos".
"""
struct PhaseNetwork
    W::Matrix{Float64}
    h::Vector{Float64}
    psi::Vector{Float64}
    omega::Vector{Float64}
    shil::Vector{Float64}
    b::Vector{Float64}
    a::Vector{Float64}
end

"""The parameter names of the phase models, in the order of pyosc's XYParams / ONNParams."""
const PHASE_PARAMS = Dict(
    "xy" => ["W", "h", "psi"],
    "onn" => ["W", "h", "psi", "omega", "shil", "sin", "cos"],
)

"""
    phase_network(model, params) -> PhaseNetwork

The network of model "xy" (params "W", "h", "psi") or "onn" (also "omega", "shil", "sin", "cos").
"""
function phase_network(model::AbstractString, params::AbstractDict)
    haskey(PHASE_PARAMS, model) ||
        throw(ArgumentError("unknown phase model \"$model\"; use \"xy\" or \"onn\""))
    W = param_matrix(params, "W", -1)
    n = size(W, 1)
    h = param_vector(params, "h", n)
    psi = param_vector(params, "psi", n)
    if model == "xy"
        return PhaseNetwork(W, h, psi, zeros(n), zeros(n), [1.0], [0.0, 0.0])
    end
    b = param_vector(params, "sin", -1)
    isempty(b) &&
        throw(ArgumentError("params[\"sin\"] must hold at least one coefficient (b_1)"))
    a = param_vector(params, "cos", length(b) + 1)
    omega = param_vector(params, "omega", n)
    shil = param_vector(params, "shil", n)
    return PhaseNetwork(W, h, psi, omega, shil, b, a)
end

n_units(net::PhaseNetwork) = size(net.W, 1)

"""True when H has no even part, i.e. the flow has the energy [`energy`](@ref)."""
has_energy(net::PhaseNetwork) = all(iszero, net.a)

"""H(x), the coupling function (rad per unit time per unit coupling)."""
function coupling_function(net::PhaseNetwork, x)
    s = net.a[1] + zero(x)
    for m in eachindex(net.b)
        s += net.a[m + 1] * cos(m * x) + net.b[m] * sin(m * x)
    end
    return s
end

"""U(x) = sum_n (b_n / n) cos(n x), the pair potential of H's odd part."""
function pair_potential(net::PhaseNetwork, x)
    s = zero(x)
    for m in eachindex(net.b)
        s += net.b[m] / m * cos(m * x)
    end
    return s
end

"""-U'(x) = sum_n b_n sin(n x)."""
function pair_force(net::PhaseNetwork, x)
    s = zero(x)
    for m in eachindex(net.b)
        s += net.b[m] * sin(m * x)
    end
    return s
end

"""-U''(x) = sum_n n b_n cos(n x)."""
function pair_stiffness(net::PhaseNetwork, x)
    s = zero(x)
    for m in eachindex(net.b)
        s += m * net.b[m] * cos(m * x)
    end
    return s
end

"""E(phi) of H's odd part (the energy when H is odd); pyosc.models.onn.energy."""
function energy(net::PhaseNetwork, phi::AbstractVector)
    n = n_units(net)
    pair = zero(eltype(phi))
    for j in 1:n, k in 1:n
        iszero(net.W[k, j]) && continue
        pair += net.W[k, j] * pair_potential(net, phi[k] - phi[j])
    end
    E = -pair / 2
    for k in 1:n
        E -= net.h[k] * cos(phi[k] - net.psi[k]) +
            net.omega[k] * phi[k] +
            net.shil[k] * cos(2 * phi[k]) / 2
    end
    return E
end

"""
    velocity!(v, net, phi)

dphi/dt of the full phase model (even part of H included); pyosc.models.onn.velocity.
"""
function velocity!(v::AbstractVector, net::PhaseNetwork, phi::AbstractVector)
    n = n_units(net)
    for k in 1:n
        acc = net.omega[k] +
            net.h[k] * sin(net.psi[k] - phi[k]) -
            net.shil[k] * sin(2 * phi[k])
        for j in 1:n
            iszero(net.W[k, j]) && continue
            acc += net.W[k, j] * coupling_function(net, phi[j] - phi[k])
        end
        v[k] = acc
    end
    return v
end

"""
    energy_gradient!(g, net, phi)

dE/dphi_k = sum_j W_kj sum_n b_n sin(n (phi_k - phi_j)) + h_k sin(phi_k - psi_k) - omega_k
+ s_k sin(2 phi_k) (minus the velocity of H's odd part).
"""
function energy_gradient!(g::AbstractVector, net::PhaseNetwork, phi::AbstractVector)
    n = n_units(net)
    for k in 1:n
        acc = net.h[k] * sin(phi[k] - net.psi[k]) -
            net.omega[k] +
            net.shil[k] * sin(2 * phi[k])
        for j in 1:n
            iszero(net.W[k, j]) && continue
            acc += net.W[k, j] * pair_force(net, phi[k] - phi[j])
        end
        g[k] = acc
    end
    return g
end

"""
    energy_hessian!(H, net, phi)

d^2E/dphi_k dphi_j: off the diagonal -W_kj sum_n n b_n cos(n (phi_k - phi_j)); on it minus the
row sum of those plus h_k cos(phi_k - psi_k) + 2 s_k cos(2 phi_k) (pyosc.models.onn.energy_hessian).
"""
function energy_hessian!(H::AbstractMatrix, net::PhaseNetwork, phi::AbstractVector)
    n = n_units(net)
    for k in 1:n
        diag = net.h[k] * cos(phi[k] - net.psi[k]) + 2 * net.shil[k] * cos(2 * phi[k])
        for j in 1:n
            j == k && continue
            off = iszero(net.W[k, j]) ?
                zero(eltype(H)) :
                -net.W[k, j] * pair_stiffness(net, phi[k] - phi[j])
            H[k, j] = off
            diag -= off
        end
        H[k, k] = diag
    end
    return H
end

# --- the log cost of the outputs (pyosc.models.xy.log_cost and its derivatives) ------------------

"""C = -log(1 + cos d) for d = phi_out - target (+Inf at anti-alignment)."""
log_cost(d) = -log1p(cos(d))

"""dC/dd = sin d / (1 + cos d) = tan(d / 2)."""
log_cost_grad(d) = sin(d) / (1 + cos(d))

"""d^2C/dd^2 = 1 / (1 + cos d)."""
log_cost_curvature(d) = 1 / (1 + cos(d))

# --- parameter derivatives of the energy (equilibrium propagation) ------------------------------

"""
    energy_param_gradient(model, net, phis) -> Dict{String, Any}

dE/dtheta averaged over the columns (states) of `phis` (N × S), per parameter name of `model`:
dE/dW_kj = -<U(phi_k - phi_j)> per pair (both entries, zero diagonal), dE/dh = -<cos(phi - psi)>,
dE/dpsi = -h <sin(phi - psi)>; "onn" adds dE/domega = -<phi>, dE/dshil = -<cos(2 phi)>/2 and
zeros for the fixed coefficients "sin", "cos" (pyosc.models.xy/onn.energy_param_grad).
"""
function energy_param_gradient(
    model::AbstractString,
    net::PhaseNetwork,
    phis::AbstractMatrix,
)
    n, S = size(phis)
    dW, dh, dpsi = zeros(n, n), zeros(n), zeros(n)
    domega, dshil = zeros(n), zeros(n)
    for s in 1:S
        phi = view(phis, :, s)
        for j in 1:n, k in 1:(j - 1)
            u = pair_potential(net, phi[k] - phi[j])
            dW[k, j] -= u
            dW[j, k] -= u
        end
        for k in 1:n
            dh[k] -= cos(phi[k] - net.psi[k])
            dpsi[k] -= net.h[k] * sin(phi[k] - net.psi[k])
            domega[k] -= phi[k]
            dshil[k] -= cos(2 * phi[k]) / 2
        end
    end
    grads = Dict{String, Any}("W" => dW ./ S, "h" => dh ./ S, "psi" => dpsi ./ S)
    if model == "onn"
        grads["omega"] = domega ./ S
        grads["shil"] = dshil ./ S
        grads["sin"] = zeros(length(net.b))
        grads["cos"] = zeros(length(net.a))
    end
    return grads
end

# --- dynamical models: "optomech-micro", "optomech-averaged", "optomech-phase" -------------------

"""
    DynamicsSpec

A dynamical network model of pyosc/models/optomech.py (its `Dynamics` record): state size per
cell, parameter names by kind, and whether the right-hand side is autonomous. The trainable
parameters are packed into one flat vector θ in the order scalars, vectors (N each), matrices
(N × N each, column-major); `tables` are fixed data that get no gradient.
"""
struct DynamicsSpec
    name::String
    state_size::Int
    scalars::Vector{String}
    vectors::Vector{String}
    matrices::Vector{String}
    tables::Vector{String}
    autonomous::Bool
end

const DYNAMICS = Dict(
    "optomech-micro" => DynamicsSpec(
        "optomech-micro",
        4,
        ["kappa", "detuning", "gamma_m", "power", "f_in", "frame", "ubar"],
        ["f", "psi"],
        ["K"],
        String[],
        false,
    ),
    "optomech-averaged" => DynamicsSpec(
        "optomech-averaged",
        2,
        ["s_max", "f_in", "frame"],
        ["f", "psi"],
        ["K"],
        ["growth", "growth_ds", "shift", "shift_ds"],
        true,
    ),
    "optomech-phase" => DynamicsSpec(
        "optomech-phase",
        1,
        ["omega", "h_in", "b_in"],
        ["h", "b", "psi"],
        ["J", "C"],
        String[],
        true,
    ),
)

function dynamics_spec(model::AbstractString)
    haskey(DYNAMICS, model) ||
        throw(ArgumentError(
            "unknown dynamical model \"$model\"; available: $(sort(collect(keys(DYNAMICS))))",
        ))
    return DYNAMICS[model]
end

"""Number of trainable parameters of `spec` with `n` cells."""
function n_params(spec::DynamicsSpec, n::Integer)
    return length(spec.scalars) + length(spec.vectors) * n + length(spec.matrices) * n^2
end

"""θ[offset + j] is element j of the vector parameter `name`."""
function vector_offset(spec::DynamicsSpec, n::Integer, name::AbstractString)
    k = findfirst(==(name), spec.vectors)
    k === nothing && throw(ArgumentError("$(spec.name) has no vector parameter \"$name\""))
    return length(spec.scalars) + (k - 1) * n
end

"""θ[offset + (j - 1) n + i] is element [i, j] of the matrix parameter `name`."""
function matrix_offset(spec::DynamicsSpec, n::Integer, name::AbstractString)
    k = findfirst(==(name), spec.matrices)
    k === nothing && throw(ArgumentError("$(spec.name) has no matrix parameter \"$name\""))
    return length(spec.scalars) + length(spec.vectors) * n + (k - 1) * n^2
end

"""
    pack_params(spec, params, n) -> Vector{Float64}

The trainable parameters of `params` as one flat vector θ (see [`DynamicsSpec`](@ref)).
"""
function pack_params(spec::DynamicsSpec, params::AbstractDict, n::Integer)
    θ = Float64[]
    for name in spec.scalars
        push!(θ, param_scalar(params, name))
    end
    for name in spec.vectors
        append!(θ, param_vector(params, name, n))
    end
    for name in spec.matrices
        append!(θ, vec(param_matrix(params, name, n)))
    end
    return θ
end

"""
    unpack_params(spec, θ, n) -> Dict{String, Any}

The inverse of [`pack_params`](@ref): scalars as numbers, vectors, matrices (used for gradients).
"""
function unpack_params(spec::DynamicsSpec, θ::AbstractVector, n::Integer)
    out = Dict{String, Any}()
    for (k, name) in enumerate(spec.scalars)
        out[name] = Float64(θ[k])
    end
    for name in spec.vectors
        o = vector_offset(spec, n, name)
        out[name] = Vector{Float64}(θ[(o + 1):(o + n)])
    end
    for name in spec.matrices
        o = matrix_offset(spec, n, name)
        out[name] = Matrix{Float64}(reshape(θ[(o + 1):(o + n^2)], n, n))
    end
    return out
end

"""
    AmplitudeTable

Growth rate g and frequency shift dOmega of one optomechanical cell, with their derivatives in
s = A^2, on the uniform grid s in [0, s_max] (pyosc.models.optomech.AmplitudeTable).
"""
struct AmplitudeTable
    growth::Vector{Float64}
    growth_ds::Vector{Float64}
    shift::Vector{Float64}
    shift_ds::Vector{Float64}
end

function amplitude_table(params::AbstractDict)
    growth = param_vector(params, "growth", -1)
    m = length(growth)
    m >= 2 || throw(ArgumentError("params[\"growth\"] must hold at least 2 grid values"))
    return AmplitudeTable(
        growth,
        param_vector(params, "growth_ds", m),
        param_vector(params, "shift", m),
        param_vector(params, "shift_ds", m),
    )
end

"""
    interpolate_table(table, s_max, s) -> (g, dOmega)

Cubic Hermite interpolation in s, clipped to [0, s_max] (pyosc.models.optomech.interpolate).
"""
function interpolate_table(table::AmplitudeTable, s_max, s)
    m = length(table.growth)
    h = s_max / (m - 1)
    x = clamp(s / h, zero(s / h), m - 1 - 1.0e-12)
    i = floor(Int, x)
    t = x - i
    h00 = (1 + 2 * t) * (1 - t)^2
    h10 = t * (1 - t)^2
    h01 = t^2 * (3 - 2 * t)
    h11 = t^2 * (t - 1)
    g = h00 * table.growth[i + 1] +
        h10 * h * table.growth_ds[i + 1] +
        h01 * table.growth[i + 2] +
        h11 * h * table.growth_ds[i + 2]
    w = h00 * table.shift[i + 1] +
        h10 * h * table.shift_ds[i + 1] +
        h01 * table.shift[i + 2] +
        h11 * h * table.shift_ds[i + 2]
    return g, w
end

"""
    drive(θ, f_off, psi_off, f_in, x, j) -> (Re D_j, Im D_j)

The complex drive D_j = f_j exp(i psi_j) + f_in exp(i x_j) (the input term on cells j <= length(x)).
"""
@inline function drive(θ, f_off::Int, psi_off::Int, f_in, x::Vector{Float64}, j::Int)
    fj, pj = θ[f_off + j], θ[psi_off + j]
    dr = fj * cos(pj)
    di = fj * sin(pj)
    if j <= length(x)
        dr += f_in * cos(x[j])
        di += f_in * sin(x[j])
    end
    return dr, di
end

"""
    MicroRHS(n, x)

Microscopic network, state per cell (Re a, Im a, u, u'), θ = (kappa, detuning, gamma_m, power,
f_in, frame, ubar, f, psi, K) (pyosc.models.optomech.micro_rhs):

    da_j/dt = [i (Delta + u_j) - kappa/2] a_j + kappa/2,
    u_j''   = -Gamma u_j' - u_j + P |a_j|^2 + sum_k K_jk u_k + Re[D_j exp(i (1 + frame) t)].
"""
struct MicroRHS
    n::Int
    x::Vector{Float64}
    f::Int
    psi::Int
    K::Int
end

"""
    AveragedRHS(n, x, table)

Averaged network, state per cell (Re c, Im c), θ = (s_max, f_in, frame, f, psi, K)
(pyosc.models.optomech.averaged_rhs):

    dc_j/dt = c_j [g(|c_j|^2) + i (dOmega(|c_j|^2) - frame)] - (i/2) sum_k K_jk c_k - (i/2) D_j.
"""
struct AveragedRHS
    n::Int
    x::Vector{Float64}
    table::AmplitudeTable
    f::Int
    psi::Int
    K::Int
end

"""
    PhaseRHS(n, x)

Phase-only network, state per cell phi, θ = (omega, h_in, b_in, h, b, psi, J, C)
(pyosc.models.optomech.phase_rhs):

    dphi_j/dt = omega + sum_k [J_jk sin(phi_k - phi_j) - C_jk cos(phi_k - phi_j)]
                + h_j sin(psi_j - phi_j) - b_j cos(psi_j - phi_j)
                + [j <= n_in] (h_in sin(x_j - phi_j) - b_in cos(x_j - phi_j)).
"""
struct PhaseRHS
    n::Int
    x::Vector{Float64}
    h::Int
    b::Int
    psi::Int
    J::Int
    C::Int
end

"""
    make_rhs(spec, n, x, table) -> MicroRHS | AveragedRHS | PhaseRHS

The right-hand side of model `spec` with `n` cells and input phases `x` (of the first cells).
"""
function make_rhs(spec::DynamicsSpec, n::Int, x::Vector{Float64}, table)
    length(x) <= n || throw(ArgumentError("more inputs ($(length(x))) than cells ($n)"))
    if spec.name == "optomech-micro"
        return MicroRHS(
            n,
            x,
            vector_offset(spec, n, "f"),
            vector_offset(spec, n, "psi"),
            matrix_offset(spec, n, "K"),
        )
    elseif spec.name == "optomech-averaged"
        return AveragedRHS(
            n,
            x,
            table,
            vector_offset(spec, n, "f"),
            vector_offset(spec, n, "psi"),
            matrix_offset(spec, n, "K"),
        )
    end
    return PhaseRHS(
        n,
        x,
        vector_offset(spec, n, "h"),
        vector_offset(spec, n, "b"),
        vector_offset(spec, n, "psi"),
        matrix_offset(spec, n, "J"),
        matrix_offset(spec, n, "C"),
    )
end

# θ[1..7] = kappa, detuning, gamma_m, power, f_in, frame, ubar (DYNAMICS["optomech-micro"].scalars)
function (rhs::MicroRHS)(dy, y, θ, t)
    n = rhs.n
    kappa, detuning, gamma_m, power, f_in, frame = θ[1], θ[2], θ[3], θ[4], θ[5], θ[6]
    wt = (1 + frame) * t
    cwt, swt = cos(wt), sin(wt)
    for j in 1:n
        ar, ai, u, v = y[4j - 3], y[4j - 2], y[4j - 1], y[4j]
        detuned = detuning + u
        dy[4j - 3] = -detuned * ai - kappa / 2 * ar + kappa / 2
        dy[4j - 2] = detuned * ar - kappa / 2 * ai
        dy[4j - 1] = v
        dr, di = drive(θ, rhs.f, rhs.psi, f_in, rhs.x, j)
        acc = -gamma_m * v - u + power * (ar^2 + ai^2) + dr * cwt - di * swt
        for k in 1:n
            acc += θ[rhs.K + (k - 1) * n + j] * y[4k - 1]
        end
        dy[4j] = acc
    end
    return nothing
end

# θ[1..3] = s_max, f_in, frame (DYNAMICS["optomech-averaged"].scalars)
function (rhs::AveragedRHS)(dy, y, θ, t)
    n = rhs.n
    s_max, f_in, frame = θ[1], θ[2], θ[3]
    for j in 1:n
        cr, ci = y[2j - 1], y[2j]
        g, w = interpolate_table(rhs.table, s_max, cr^2 + ci^2)
        q = w - frame
        dr, di = drive(θ, rhs.f, rhs.psi, f_in, rhs.x, j)
        dcr = cr * g - ci * q + di / 2
        dci = ci * g + cr * q - dr / 2
        for k in 1:n
            Kjk = θ[rhs.K + (k - 1) * n + j]
            dcr += Kjk * y[2k] / 2
            dci -= Kjk * y[2k - 1] / 2
        end
        dy[2j - 1] = dcr
        dy[2j] = dci
    end
    return nothing
end

# θ[1..3] = omega, h_in, b_in (DYNAMICS["optomech-phase"].scalars)
function (rhs::PhaseRHS)(dy, y, θ, t)
    n = rhs.n
    omega, h_in, b_in = θ[1], θ[2], θ[3]
    for j in 1:n
        phi = y[j]
        acc = omega +
            θ[rhs.h + j] * sin(θ[rhs.psi + j] - phi) -
            θ[rhs.b + j] * cos(θ[rhs.psi + j] - phi)
        if j <= length(rhs.x)
            d = rhs.x[j] - phi
            acc += h_in * sin(d) - b_in * cos(d)
        end
        for k in 1:n
            d = y[k] - phi
            acc += θ[rhs.J + (k - 1) * n + j] * sin(d) - θ[rhs.C + (k - 1) * n + j] * cos(d)
        end
        dy[j] = acc
    end
    return nothing
end

"""
    output_phase(rhs, y, θ, t, j)

The oscillation phase of cell j in the drive frame (pyosc.models.optomech.*_phase): the microscopic
readout arg[(u - ubar - i u'/w) exp(-i w t)] with w = 1 + frame; arg c for the averaged model; phi
itself for the phase model.
"""
function output_phase(::MicroRHS, y, θ, t, j::Int)
    w = 1 + θ[6]
    re0 = y[4j - 1] - θ[7]
    im0 = -y[4j] / w
    c, s = cos(w * t), sin(w * t)
    return atan(im0 * c - re0 * s, re0 * c + im0 * s)
end
output_phase(::AveragedRHS, y, θ, t, j::Int) = atan(y[2j], y[2j - 1])
output_phase(::PhaseRHS, y, θ, t, j::Int) = y[j]

const LOSS_KINDS = ("distance", "log")

"""
    output_cost(rhs, y, θ, t, outputs, target, kind)

Cost of one state's output phases (pyosc.engines.base.FinalLoss): "distance" = mean over outputs of
(1 - cos(phi - tau)) / 2, "log" = -sum over outputs of log(1 + cos(phi - tau)).
"""
function output_cost(
    rhs,
    y,
    θ,
    t,
    outputs::Vector{Int},
    target::AbstractVector,
    kind::AbstractString,
)
    acc = zero(promote_type(eltype(y), eltype(θ)))
    for (m, j) in enumerate(outputs)
        d = output_phase(rhs, y, θ, t, j) - target[m]
        acc += kind == "distance" ? (1 - cos(d)) / (2 * length(outputs)) : log_cost(d)
    end
    return acc
end

"""The mean cost of uniformly random output phases (what a state that never settles is worth)."""
function chance_cost(kind::AbstractString, n_out::Integer)
    kind == "distance" && return 0.5
    return n_out * log(2.0) # E[log(1 + cos x)] = -log 2 for uniform x
end
