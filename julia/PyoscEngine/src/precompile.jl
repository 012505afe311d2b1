# PrecompileTools v1.3 (src/workloads.jl): code run inside @compile_workload is compiled into this
# package's cache at precompile time, so the first call from Python does not pay for it. The
# workload calls every entry point on tiny problems with the argument types the bridge passes
# (Dict{String, Any} of Float64 arrays, Float64 matrices, Bool and Int vectors, Strings). A failure
# here is reported and skipped: it must not make the package unloadable.

@setup_workload begin
    W = [0.0 0.6 -0.4; 0.6 0.0 0.9; -0.4 0.9 0.0]
    xy_params = Dict{String, Any}(
        "W" => W,
        "h" => [0.2, 0.1, -0.1],
        "psi" => [0.0, 0.5, 1.0],
    )
    onn_params = Dict{String, Any}(
        "W" => W,
        "h" => [0.2, 0.1, -0.1],
        "psi" => [0.0, 0.5, 1.0],
        "omega" => zeros(3),
        "shil" => zeros(3),
        "sin" => [1.0, 0.2],
        "cos" => zeros(3),
    )
    phi0 = [0.1 -0.3; 0.4 0.2; -0.2 0.6]
    clamped = [true, false, false]
    outputs = [2]
    targets = [0.5 -0.5]
    phase_params = Dict{String, Any}(
        "omega" => 0.0,
        "h_in" => 0.05,
        "b_in" => 0.01,
        "h" => fill(0.2, 3),
        "b" => fill(0.01, 3),
        "psi" => [0.0, 0.3, 0.6],
        "J" => 0.1 .* W,
        "C" => 0.02 .* W,
    )
    y0 = reshape([0.1, 0.5, -0.4, 0.3, 0.2, -0.1], 1, 3, 2)
    inputs = [0.2 -0.2]
    @compile_workload begin
        try
            relax("xy", xy_params, phi0, clamped, outputs, targets, 0.1)
            relax(
                "onn",
                onn_params,
                phi0,
                clamped,
                outputs,
                targets,
                0.0;
                method = "ode",
                tol = 1.0e-6,
            )
            ep_step("xy", xy_params, phi0, clamped, outputs, targets, 0.1)
            trajectory("xy", xy_params, phi0, clamped, outputs, targets, 0.0, [0.5, 1.0])
            integrate("optomech-phase", phase_params, y0, inputs, [0.5, 1.0])
            final_state_loss_and_grad(
                "optomech-phase",
                phase_params,
                y0,
                inputs,
                targets,
                outputs,
                1.0,
            )
            final_state_loss_and_grad(
                "optomech-phase",
                phase_params,
                y0,
                inputs,
                targets,
                outputs,
                1.0;
                sensealg = "gauss-forwarddiff",
            )
            steady_state_loss_and_grad(
                "optomech-phase",
                phase_params,
                y0,
                inputs,
                targets,
                outputs,
            )
            versions()
        catch err
            @warn "PyoscEngine precompile workload failed; the package still loads" exception = err
        end
    end
end
