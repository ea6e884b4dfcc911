using System.Text.Json;
using PixArtLora.Diffusion;
using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity.Kinds;

/// <summary>
/// diffusers schedulers (DPM-Solver++, DDIM, DDPM, Euler, SA-Solver) driven by the case's toy model through our
/// public sampling loop. Dispatches on case.json's scheduler_class; the noise the scheduler drew is replayed.
/// </summary>
public sealed class SchedulerParity : IParityKind
{
    const string ToyModel = "eps(x, t) = tanh(x) * (t / 1000.0) + 0.05 * cos(x)";

    public IReadOnlyCollection<string> Kinds => new[] { "scheduler" };

    public void Run(ParityCase c)
    {
        var json = c.Json;
        string cls = json.GetProperty("scheduler_class").GetString()!;
        string name = SamplerFactory.NameForClass(cls) ?? throw new XunitException($"{c.Name}: no sampler for scheduler_class {cls}");
        int steps = json.GetProperty("num_inference_steps").GetInt32();
        var config = SchedulerConfig.Load(c.PathOf(json.GetProperty("scheduler_config_file").GetString()!));
        string toy = json.GetProperty("toy_model").GetString()!;
        if (!toy.StartsWith(ToyModel, StringComparison.Ordinal))
            throw new XunitException($"{c.Name}: toy_model \"{toy}\" is not the one this runner implements ({ToyModel})");

        var stepKwargs = json.TryGetProperty("step_kwargs", out var kw) ? kw : default;
        var options = new SamplerOptions
        {
            Eta = Number(stepKwargs, "eta") ?? 0,
            DdimUseClippedModelOutput = stepKwargs.ValueKind == JsonValueKind.Object && stepKwargs.TryGetProperty("use_clipped_model_output", out var clipped) && clipped.GetBoolean(),
            EulerSChurn = Number(stepKwargs, "s_churn") ?? 0,
            EulerSTmin = Number(stepKwargs, "s_tmin") ?? 0,
            EulerSTmax = Number(stepKwargs, "s_tmax") ?? double.PositiveInfinity,
            EulerSNoise = Number(stepKwargs, "s_noise") ?? 1.0,
        };
        foreach (var p in stepKwargs.ValueKind == JsonValueKind.Object ? stepKwargs.EnumerateObject() : Enumerable.Empty<JsonProperty>())
            if (p.Name is not ("eta" or "variance_noise" or "use_clipped_model_output" or "s_churn" or "s_tmin" or "s_tmax" or "s_noise"))
                throw new XunitException($"{c.Name}: step_kwargs.{p.Name} is not handled by this runner");

        using var sampler = SamplerFactory.Create(name, steps, config, options);
        CheckSchedule(c, sampler);

        if (c.Has("add_noise.noisy_samples"))
        {
            var noisy = sampler.Schedule.AddNoise(c.Tensor("add_noise.original_samples"), c.Tensor("add_noise.noise"), c.Tensor("add_noise.timesteps"));
            c.AssertClose("add_noise.noisy_samples", noisy);
        }

        // The scheduler's own draws (scheduler_noise) or the noise passed as step(..., variance_noise=...).
        string? noiseName = c.Has("scheduler_noise") ? "scheduler_noise" : c.Has("variance_noise") ? "variance_noise" : null;
        var noise = noiseName == null ? null : NoiseSource.Replay(c.Tensor(noiseName).unbind(0));

        var xT = c.Tensor("x_T");
        var modelInputs = new List<Tensor>();
        var modelOutputs = new List<Tensor>();
        var samples = new List<Tensor>();
        var final = SamplingLoop.Run(sampler, xT, (input, t) =>
        {
            // The reference multiplies by the Python float t / 1000.0.
            double tv = t[0].item<float>();
            var eps = input.tanh() * (tv / 1000.0) + 0.05 * input.cos();
            modelInputs.Add(input.clone().DetachFromDisposeScope());
            modelOutputs.Add(eps.clone().DetachFromDisposeScope());
            return eps;
        }, noise, onStep: p => samples.Add(p.Sample.clone().DetachFromDisposeScope()));

        // Report the first step that goes wrong before the final sample.
        var expectedSamples = c.Tensor("samples");
        var expectedInputs = c.Tensor("model_inputs");
        var expectedOutputs = c.Tensor("model_outputs");
        TensorAssert.AllClose(xT * sampler.InitNoiseSigma, expectedSamples[0], c.Atol, c.Rtol, $"{c.Name}: samples[0]");
        for (int i = 0; i < steps; i++)
        {
            TensorAssert.AllClose(modelInputs[i], expectedInputs[i], c.Atol, c.Rtol, $"{c.Name}: model_inputs[{i}]");
            TensorAssert.AllClose(modelOutputs[i], expectedOutputs[i], c.Atol, c.Rtol, $"{c.Name}: model_outputs[{i}]");
            TensorAssert.AllClose(samples[i], expectedSamples[i + 1], c.Atol, c.Rtol, $"{c.Name}: samples[{i + 1}] (after step {i}, t = {sampler.Timesteps[i]})");
        }
        if (noise != null && noise.Drawn != (int)c.Tensor(noiseName!).shape[0])
            throw new XunitException($"{c.Name}: the sampler drew {noise.Drawn} noise tensors, the reference {c.Tensor(noiseName!).shape[0]}");
        c.AssertClose("final_sample", final);
        foreach (var t in modelInputs.Concat(modelOutputs).Concat(samples)) t.Dispose();
    }

    static void CheckSchedule(ParityCase c, ISampler sampler)
    {
        var expected = c.Tensor("timesteps");
        var actual = tensor(sampler.Timesteps.ToArray(), float64);
        if (expected.dtype == ScalarType.Int64) TensorAssert.Equal(actual.to(int64), expected, $"{c.Name}: timesteps");
        else TensorAssert.AllClose(actual, expected, 0, 0, $"{c.Name}: timesteps");
        TensorAssert.AllClose(tensor(new[] { sampler.InitNoiseSigma }), c.Tensor("init_noise_sigma"), c.Atol, c.Rtol, $"{c.Name}: init_noise_sigma");
        if (c.Json.TryGetProperty("init_noise_sigma", out var ins))
            TensorAssert.AllClose(tensor(new[] { sampler.InitNoiseSigma }), tensor(new[] { ins.GetDouble() }), c.Atol, c.Rtol, $"{c.Name}: case.json init_noise_sigma");
        // float32 reference vs our float64 schedule: a relative check well below the case tolerance.
        TensorAssert.AllClose(tensor(sampler.Schedule.AlphasCumprod.ToArray()), c.Tensor("debug.alphas_cumprod"), 1e-6, 1e-5, $"{c.Name}: alphas_cumprod");
        IReadOnlyList<double>? sigmas = sampler switch
        {
            DpmSolverMultistepSampler d => d.Sigmas,
            EulerDiscreteSampler e => e.Sigmas,
            SaSolverSampler s => s.Sigmas,
            _ => null,
        };
        if (c.Has("debug.sigmas"))
        {
            if (sigmas == null) throw new XunitException($"{c.Name}: the case has debug.sigmas but {sampler.Name} has no sigma grid");
            TensorAssert.AllClose(tensor(sigmas.ToArray()), c.Tensor("debug.sigmas"), 1e-6, 1e-5, $"{c.Name}: sigmas");
        }
    }

    static double? Number(JsonElement obj, string key)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(key, out var v)) return null;
        // Python's json writes inf as a bare Infinity, which the case loader may hand over as a string.
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble()
             : v.ValueKind == JsonValueKind.String && double.TryParse(v.GetString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) ? d
             : null;
    }
}
