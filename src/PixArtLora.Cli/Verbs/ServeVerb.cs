using System.CommandLine;
using Microsoft.Extensions.Logging;
using PixArtLora.Server;

namespace PixArtLora.Cli.Verbs;

/// <summary>What <c>lora serve</c> hands to the backend factory: the model to load, its LoRAs, and where it runs.</summary>
/// <param name="ModelId">Registry variant, Hugging Face id or local diffusers folder (as <c>lora infer --model_id</c>).</param>
/// <param name="LoraPaths">LoRA files as given; a path may end with <c>:scale</c>, the slider's starting value.</param>
public sealed record ServeBackendSettings(string ModelId, IReadOnlyList<string> LoraPaths, string Device, string Dtype);

/// <summary>
/// <c>lora serve --model_id &lt;variant|folder&gt; [--lora_path a.safetensors ...] [--port 7788] [--host 127.0.0.1]</c>:
/// loads the model once and serves a web page to generate images with it and its LoRAs (see <see cref="WebDemoServer"/>).
/// </summary>
public static class ServeVerb
{
    /// <summary>The verb with the inference pipeline as its backend.</summary>
    public static Command Create() => Create(CreatePipelineBackend);

    /// <summary>The verb with another backend factory (the factory loads the model; it may take minutes).</summary>
    public static Command Create(Func<ServeBackendSettings, CancellationToken, Task<IGenerationBackend>> backendFactory)
    {
        var model = CliOptions.Create<string>("--model_id", "Registry variant, Hugging Face id or local diffusers folder", extraAliases: new[] { "--model" });
        model.Required = true;
        var loras = CliOptions.Create<string[]>("--lora_path", "LoRA file(s) offered on the page; a path may end with :scale (the slider's start)",
            extraAliases: new[] { "--lora" });
        loras.AllowMultipleArgumentsPerToken = true;
        var port = CliOptions.Create<int>("--port", "TCP port (0 = any free port)", 7788);
        var host = CliOptions.Create<string>("--host",
            "Address to bind. 127.0.0.1 keeps the demo on this machine; 0.0.0.0 exposes it to your network, without any login", "127.0.0.1");
        var outputDir = CliOptions.Create<string>("--output_dir", "Folder for generated PNGs and their JSON sidecars (the gallery survives restarts)",
            Path.Combine("output", "serve"));
        var maxImages = CliOptions.Create<int>("--max_images", "Most images one request may ask for", new RequestLimits().MaxImages);
        var device = CliOptions.Create<string>("--device", "cpu, cuda or cuda:N", "cpu");
        var dtype = CliOptions.Create<string>("--dtype", "fp32 or bf16 (fp16 only on CUDA)", "fp32");

        var command = new Command("serve", "Serve a web page to generate images with a base model and LoRAs (one job at a time, queued)")
            { model, loras, port, host, outputDir, maxImages, device, dtype };
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var options = new WebDemoOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                OutputDirectory = parse.GetValue(outputDir)!,
                Limits = new RequestLimits { MaxImages = Positive(parse.GetValue(maxImages), "--max_images") },
                ConfigureLogging = logging => logging.AddSimpleConsole(o => o.SingleLine = true)
                    .AddFilter("Microsoft", LogLevel.Warning),
            };
            if (ExposureWarning(options.Host) is { } warning) parse.InvocationConfiguration.Error.WriteLine(warning);

            var settings = new ServeBackendSettings(parse.GetValue(model)!, parse.GetValue(loras) ?? Array.Empty<string>(),
                parse.GetValue(device)!, parse.GetValue(dtype)!);
            output.WriteLine($"loading {settings.ModelId}…");
            var backend = await backendFactory(settings, ct);
            try
            {
                await using var server = await WebDemoServer.StartAsync(backend, options, ct);
                output.WriteLine($"serving {backend.Info.Name} on {server.Url}");
                output.WriteLine($"results go to {server.OutputDirectory}; Ctrl+C stops");
                try { await server.WaitForShutdownAsync(ct); }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
                output.WriteLine("stopping…");
            }
            finally
            {
                if (backend is IAsyncDisposable asyncDisposable) await asyncDisposable.DisposeAsync();
                else (backend as IDisposable)?.Dispose();
            }
            return 0;
        });
        return command;
    }

    /// <summary>The warning printed when <paramref name="host"/> makes the demo reachable from other machines; null on loopback.</summary>
    public static string? ExposureWarning(string host) => WebDemoOptions.IsLoopback(host)
        ? null
        : $"warning: --host {host} exposes the demo to every machine that can reach this one. It has no login: anyone there can " +
          "queue jobs on your hardware and see every image in the gallery. Use it only on a network you trust.";

    // Filled in when the inference pipeline lands: an adapter from PixArtPipeline to IGenerationBackend.
    static Task<IGenerationBackend> CreatePipelineBackend(ServeBackendSettings settings, CancellationToken ct) =>
        Task.Run<IGenerationBackend>(() => PipelineBackend.Load(settings.ModelId, settings.LoraPaths, settings.Device, settings.Dtype), ct);

    static int Positive(int value, string option) =>
        value > 0 ? value : throw new ArgumentException($"{option}: {value}, expected a positive number");
}
