using System.CommandLine;
using PixArtLora.Hub;
using PixArtLora.Inference;
using Spectre.Console;

namespace PixArtLora.Cli.Verbs;

/// <summary>
/// <c>lora infer --model_id sigma-512-ms --lora_path run/lora.safetensors --prompt "a cute dragon" --output_path out.png</c>:
/// text-to-image with a registry model, a local folder or a Hub id, optional LoRAs (<c>path:scale</c>) or a
/// fine-tuned checkpoint. Every setting of <see cref="InferSettings"/> is a flag and a key of the <c>-c</c> YAML file.
/// </summary>
public static class InferVerb
{
    public static Command Create()
    {
        var command = new Command("infer", "Generate images (PNG with generation parameters; a contact sheet for several)");
        var settings = new SettingsOptions<InferSettings>(command);
        command.SetAction((parse, ct) =>
        {
            var s = settings.Bind(parse);
            using var client = new HubClient(HubOptions.FromEnvironment());
            string Fetch(PixArtLora.Registry.HubComponent c) =>
                HubProgressBars.RunAsync(p => client.GetFolderAsync(c.Repo, c.Subfolder, progress: p, ct: ct)).GetAwaiter().GetResult();
            InferenceRunResult result;
            if (AnsiConsole.Profile.Capabilities.Interactive)
            {
                var reporter = new BarReporter();
                try { result = InferenceRunner.Run(s, reporter, Fetch, ct); }
                finally { reporter.Finish(); }
                foreach (var path in result.Images.Append(result.ContactSheet).OfType<string>()) Console.WriteLine(path);
            }
            else result = InferenceRunner.Run(s, new LineReporter(), Fetch, ct);
            Console.WriteLine($"wrote {result.Images.Count} image(s){(result.ContactSheet is null ? "" : " and a contact sheet")}");
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>Plain lines (logs, pipes, CI): one per batch and per file.</summary>
    sealed class LineReporter : IInferenceReporter
    {
        int _batches;
        public void Message(string text) => Console.Error.WriteLine(text);
        public void Start(int batches, int stepsPerBatch, int images) => _batches = batches;
        public void Step(int batch, int step, int steps)
        {
            if (step == steps) Console.Error.WriteLine($"batch {batch + 1}/{_batches}: {steps} steps done");
        }
        public void Saved(string path) => Console.WriteLine(path);
    }

    /// <summary>
    /// A live progress bar over all steps of all batches. Spectre's live display owns the console while it runs, so it
    /// is driven from a background task fed by the generation thread.
    /// </summary>
    sealed class BarReporter : IInferenceReporter
    {
        readonly object _gate = new();
        ProgressTask? _task;
        Task? _display;
        readonly TaskCompletionSource _done = new();
        readonly TaskCompletionSource _ready = new();
        int _batches, _steps;

        public void Message(string text)
        {
            if (_display is null) AnsiConsole.MarkupLine("[grey]{0}[/]", Markup.Escape(text));
        }

        public void Start(int batches, int stepsPerBatch, int images)
        {
            _batches = batches;
            _steps = stepsPerBatch;
            _display = AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    lock (_gate) _task = ctx.AddTask($"{images} image(s)", maxValue: (double)batches * stepsPerBatch);
                    _ready.TrySetResult();
                    await _done.Task;
                });
            _ready.Task.Wait();
        }

        public void Step(int batch, int step, int steps)
        {
            lock (_gate)
            {
                if (_task is null) return;
                _task.Value = (double)batch * _steps + step;
                _task.Description = $"batch {batch + 1}/{_batches} step {step}/{steps}";
            }
        }

        public void Saved(string path) { }

        public void Finish()
        {
            _done.TrySetResult();
            _display?.GetAwaiter().GetResult();
        }
    }
}
