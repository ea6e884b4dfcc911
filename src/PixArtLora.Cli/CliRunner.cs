using System.CommandLine;

namespace PixArtLora.Cli;

/// <summary>Parses, runs, and turns every failure into a one-line message on stderr and a non-zero exit code.</summary>
public static class CliRunner
{
    public static int Run(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var inner = e is AggregateException { InnerExceptions.Count: 1 } agg ? agg.InnerExceptions[0] : e;
            Console.Error.WriteLine($"error: {inner.Message}");
            if (Environment.GetEnvironmentVariable("PIXARTLORA_DEBUG") == "1") Console.Error.WriteLine(inner);
            return inner is OperationCanceledException ? 130 : 1;
        }
    }
}
