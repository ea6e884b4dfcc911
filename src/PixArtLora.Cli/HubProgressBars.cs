using PixArtLora.Hub;
using Spectre.Console;

namespace PixArtLora.Cli;

/// <summary>
/// Shows Hub downloads as one progress bar per file (size, percentage, speed, time left) on a terminal, or one
/// line per finished file when the output is redirected. Any verb that resolves models or datasets can wrap its
/// <see cref="HubClient"/> calls in <see cref="RunAsync{T}"/>.
/// </summary>
public static class HubProgressBars
{
    /// <summary>Fetches one registry component (repo + subfolder) with progress bars; the fetcher verbs hand to the library.</summary>
    public static string FetchComponent(PixArtLora.Registry.HubComponent component) =>
        RunAsync(p => new HubClient(HubOptions.FromEnvironment()).GetFolderAsync(component.Repo, component.Subfolder, progress: p))
            .GetAwaiter().GetResult();

    public static async Task<T> RunAsync<T>(Func<IProgress<HubFileProgress>, Task<T>> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
            return await work(new LineProgress());

        T result = default!;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                     new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx => { result = await work(new BarProgress(ctx)); });
        return result;
    }

    sealed class BarProgress(ProgressContext ctx) : IProgress<HubFileProgress>
    {
        readonly Dictionary<string, ProgressTask> _tasks = new();

        public void Report(HubFileProgress p)
        {
            lock (_tasks)
            {
                string key = $"{p.Repo.Id}/{p.File}";
                if (!_tasks.TryGetValue(key, out var task))
                {
                    task = ctx.AddTask(Markup.Escape(p.File), maxValue: Math.Max(1, p.TotalBytes ?? 1));
                    _tasks[key] = task;
                }
                if (p.TotalBytes is long total) task.MaxValue = Math.Max(1, total);
                task.Value = p.Stage is HubFileStage.Cached or HubFileStage.Completed ? task.MaxValue : p.BytesDone;
                if (p.Stage == HubFileStage.Cached) task.Description = Markup.Escape(p.File) + " [grey](cached)[/]";
                if (p.Stage == HubFileStage.Resuming) task.Description = Markup.Escape(p.File) + " [yellow](resuming)[/]";
                if (p.Stage is HubFileStage.Cached or HubFileStage.Completed) task.StopTask();
            }
        }
    }

    sealed class LineProgress : IProgress<HubFileProgress>
    {
        public void Report(HubFileProgress p)
        {
            string? line = p.Stage switch
            {
                HubFileStage.Completed => $"downloaded {p.Repo.Id}/{p.File} ({p.BytesDone:N0} bytes)",
                HubFileStage.Cached => $"cached     {p.Repo.Id}/{p.File}",
                HubFileStage.Resuming => $"resuming   {p.Repo.Id}/{p.File} at byte {p.BytesDone:N0}",
                _ => null,
            };
            if (line != null) Console.Error.WriteLine(line);
        }
    }
}
