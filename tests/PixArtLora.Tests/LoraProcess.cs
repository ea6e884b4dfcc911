using System.Diagnostics;

namespace PixArtLora.Tests.Registry;

/// <summary>Runs the built <c>lora</c> executable (copied beside the test assembly) and captures what a user would see.</summary>
public static class LoraProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args)
    {
        string exe = Path.Combine(AppContext.BaseDirectory, "lora");
        if (!File.Exists(exe)) throw new FileNotFoundException($"the lora executable was not built next to the tests: {exe}");
        var info = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"lora {string.Join(' ', args)} did not finish in 2 minutes");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
