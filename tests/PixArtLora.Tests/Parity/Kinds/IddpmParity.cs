using System.Text.Json;
using PixArtLora.Diffusion;
using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Parity.Kinds;

/// <summary>
/// The official PixArt IDDPM sampler (plain, respaced, and with forward_with_cfg guidance): first every step
/// teacher-forced from the reference's previous sample at the tight per-step tolerance, then the whole loop.
/// </summary>
public sealed class IddpmSamplerParity : IParityKind
{
    public IReadOnlyCollection<string> Kinds => new[] { "iddpm-sampler" };

    public void Run(ParityCase c)
    {
        var json = c.Json;
        string respacing = json.GetProperty("timestep_respacing").GetString()!;
        bool clip = json.GetProperty("clip_denoised").GetBoolean();
        int steps = json.GetProperty("num_steps").GetInt32();
        using var sampler = new IddpmSampler(respacing, clipDenoised: clip);
        if (sampler.StepCount != steps) throw new XunitException($"{c.Name}: respacing \"{respacing}\" gave {sampler.StepCount} steps, case says {steps}");

        TensorAssert.Equal(tensor(sampler.TimestepMap.Select(t => (long)t).ToArray()), c.Tensor("timestep_map"), $"{c.Name}: timestep_map");
        TensorAssert.Equal(tensor(sampler.Timesteps.Select(t => (long)t).ToArray()), c.Tensor("model_timesteps"), $"{c.Name}: model_timesteps");
        TensorAssert.Equal(tensor(Enumerable.Range(0, steps).Select(i => (long)sampler.RespacedIndex(i)).ToArray()), c.Tensor("respaced_indices"), $"{c.Name}: respaced_indices");
        TensorAssert.AllClose(tensor(sampler.Diffusion.Schedule.Betas.ToArray()), c.Tensor("debug_respaced_betas"), 0, 1e-6, $"{c.Name}: respaced betas");

        bool cfg = json.TryGetProperty("cfg", out var cfgJson);
        var guidance = cfg ? new ClassifierFreeGuidance(cfgJson.GetProperty("cfg_scale").GetDouble(), GuidanceMode.Official) : null;
        DenoiserFn model = cfg ? CfgToyModel(c) : PlainToyModel;

        var xT = c.Tensor("x_T");
        var noisePerStep = c.Tensor("noise_per_step");
        var expectedSamples = c.Tensor("debug_sample_per_step");
        var expectedX0 = c.Tensor("debug_pred_xstart_per_step");
        var stepTol = json.GetProperty("per_step_tolerance");
        double atol = stepTol.GetProperty("atol").GetDouble(), rtol = stepTol.GetProperty("rtol").GetDouble();
        for (int k = 0; k < steps; k++)
        {
            using var scope = NewDisposeScope();
            var xIn = k == 0 ? xT : expectedSamples[k - 1];
            var t = full(new[] { xIn.shape[0] }, sampler.Timesteps[k], float32);
            var output = guidance == null ? model(xIn, t) : OfficialGuidedOutput(model, guidance, xIn, sampler.Timesteps[k]);
            using var step = sampler.Denoise(output, k, xIn, NoiseSource.Replay(new[] { noisePerStep[k] }));
            TensorAssert.AllClose(step.PredXStart, expectedX0[k], atol, rtol, $"{c.Name}: pred_xstart at step {k} (teacher-forced)");
            TensorAssert.AllClose(step.Sample, expectedSamples[k], atol, rtol, $"{c.Name}: sample after step {k} (teacher-forced)");
        }

        // The whole loop through the public API, from the user's latent (the first half under official CFG).
        var start = cfg ? xT.narrow(0, 0, xT.shape[0] / 2) : xT;
        if (cfg) TensorAssert.AllClose(xT.narrow(0, xT.shape[0] / 2, xT.shape[0] / 2), start, 0, 0, $"{c.Name}: x_T is the latent repeated twice");
        var noise = NoiseSource.Replay(noisePerStep.unbind(0));
        var final = SamplingLoop.Run(sampler, start, model, noise, guidance);
        if (noise.Drawn != steps) throw new XunitException($"{c.Name}: {noise.Drawn} noise draws, expected {steps}");
        c.AssertClose(cfg ? "sample_cond_half" : "sample", final);
    }

    /// <summary>eps = tanh(x) · t/1000 + 0.05 cos(x), v = 0.5 sin(x); t is the original timestep.</summary>
    static Tensor PlainToyModel(Tensor x, Tensor t)
    {
        var scale = (t.to(float32) / 1000).reshape(-1, 1, 1, 1);
        return cat(new[] { x.tanh() * scale + 0.05 * x.cos(), 0.5 * x.sin() }, 1);
    }

    /// <summary>The case's ToyPixArt: each row adds 0.1 · mean(y_row); rows [0, n) see the captions, [n, 2n) the null embedding.</summary>
    static DenoiserFn CfgToyModel(ParityCase c)
    {
        var captions = c.Tensor("caption_embs");
        var nullY = c.Tensor("null_y");
        long n = captions.shape[0];
        var rowMeans = cat(new[] { captions.reshape(n, -1).mean(new long[] { 1 }), nullY.reshape(1, -1).mean(new long[] { 1 }).expand(n) }, 0);
        return (x, t) =>
        {
            if (x.shape[0] != 2 * n) throw new XunitException($"toy CFG model called with {x.shape[0]} rows, expected {2 * n}");
            var cb = (0.1 * rowMeans).reshape(-1, 1, 1, 1);
            var scale = (t.to(float32) / 1000).reshape(-1, 1, 1, 1);
            return cat(new[] { x.tanh() * scale + 0.05 * x.cos() + cb, 0.5 * x.sin() + cb }, 1);
        };
    }

    /// <summary>forward_with_cfg on a doubled batch: the model sees the first half twice; guidance combines.</summary>
    static Tensor OfficialGuidedOutput(DenoiserFn model, ClassifierFreeGuidance guidance, Tensor x, double timestep)
    {
        long half = x.shape[0] / 2;
        var firstHalf = x.narrow(0, 0, half);
        var doubled = model(cat(new[] { firstHalf, firstHalf }, 0), full(new[] { 2 * half }, timestep, float32));
        return guidance.Combine(doubled, x.shape[1]);
    }
}

/// <summary>The official training loss (MSE + VB) of GaussianDiffusion.training_losses on a fixed model output.</summary>
public sealed class IddpmLossParity : IParityKind
{
    public IReadOnlyCollection<string> Kinds => new[] { "iddpm-loss" };

    public void Run(ParityCase c)
    {
        var config = c.Json.GetProperty("diffusion_config");
        if (config.TryGetProperty("model_var_type", out var mv) && mv.GetString() != "LEARNED_RANGE")
            throw new XunitException($"{c.Name}: model_var_type {mv.GetString()} is not handled");
        if (config.TryGetProperty("model_mean_type", out var mm) && mm.GetString() != "EPSILON")
            throw new XunitException($"{c.Name}: model_mean_type {mm.GetString()} is not handled");
        if (config.TryGetProperty("snr", out var snr) && snr.ValueKind == JsonValueKind.True)
            throw new XunitException($"{c.Name}: PixArt's snr=True target switch is not implemented");
        int trainSteps = (int)c.Tensor("schedule_betas").shape[0];
        var schedule = NoiseSchedule.IddpmLinear(trainSteps);
        var objective = new TrainingObjective(schedule, DiffusionLoss.MseVb);

        TensorAssert.AllClose(tensor(schedule.Betas.ToArray()), c.Tensor("schedule_betas"), 0, 1e-6, $"{c.Name}: betas");
        TensorAssert.AllClose(tensor(schedule.AlphasCumprod.ToArray()), c.Tensor("schedule_alphas_cumprod"), 0, 1e-6, $"{c.Name}: alphas_cumprod");

        var x0 = c.Tensor("x_start");
        var noise = c.Tensor("noise");
        var t = c.Tensor("t");
        var output = c.Tensor("model_output");
        var xT = objective.AddNoise(x0, noise, t);
        c.AssertClose("x_t", xT);

        // The bound's parts, to locate a mismatch.
        var diffusion = new GaussianDiffusion(schedule.Respaced(Enumerable.Range(0, trainSteps).ToArray()));
        TensorAssert.AllClose(tensor(diffusion.PosteriorLogVarianceClipped.ToArray()), c.Tensor("schedule_posterior_log_variance_clipped"), 0, 1e-6,
            $"{c.Name}: posterior_log_variance_clipped");
        using (var vb = diffusion.VariationalBound(output, x0, xT, t))
        {
            c.AssertClose("debug_true_posterior_mean", vb.TrueMean);
            c.AssertClose("debug_true_posterior_log_variance_clipped", vb.TrueLogVariance);
            c.AssertClose("debug_pred_xstart", vb.PredXStart);
            c.AssertClose("debug_model_mean", vb.ModelMean);
            c.AssertClose("debug_model_log_variance", vb.ModelLogVariance);
            c.AssertClose("debug_vb_kl_bits", vb.Kl);
            c.AssertClose("debug_vb_decoder_nll_bits", vb.DecoderNll);
        }

        using var terms = objective.Losses(output, x0, xT, noise, t);
        c.AssertClose("mse", terms.Mse);
        c.AssertClose("vb", terms.Vb!);
        c.AssertClose("loss", terms.Loss);
    }
}
