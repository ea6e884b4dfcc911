using System.Diagnostics;

namespace PixArtLora.Tests;

/// <summary>Runs the built <c>lora</c> executable (copied beside the test assembly) and captures what a user would see.</summary>
public static class LoraProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
    }

    /// <summary>
    /// Starts <c>lora</c> with <paramref name="args"/> in <paramref name="workingDirectory"/> (default: beside the tests),
    /// with <paramref name="environment"/> applied to this process's environment (a null value removes the variable);
    /// stdout and stderr are redirected.
    /// </summary>
    public static Process Start(IEnumerable<string> args, string? workingDirectory = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        string exe = Path.Combine(AppContext.BaseDirectory, "lora");
        if (!File.Exists(exe)) throw new FileNotFoundException($"the lora executable was not built next to the tests: {exe}");
        var info = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            if (value is null) info.Environment.Remove(name);
            else info.Environment[name] = value;
        return Process.Start(info)!;
    }

    /// <summary>Runs <c>lora</c> to the end (killed and a <see cref="TimeoutException"/> after <paramref name="timeout"/>).</summary>
    public static Result Run(TimeSpan timeout, IEnumerable<string> args, string? workingDirectory = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        using var process = Start(args, workingDirectory, environment);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"lora {string.Join(' ', args)} did not finish in {timeout}");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs <c>lora</c> to the end without blocking a thread (killed and a <see cref="TimeoutException"/> after <paramref name="timeout"/>).</summary>
    public static async Task<Result> RunAsync(TimeSpan timeout, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        using var process = Start(args, environment: environment);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try { await process.WaitForExitAsync(cancel.Token); }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"lora {string.Join(' ', args)} did not finish in {timeout}");
        }
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs <c>lora</c> beside the tests with at most 2 minutes.</summary>
    public static Result Run(params string[] args) => Run(TimeSpan.FromMinutes(2), args);
}
