using System.CommandLine;
using PixArtLora.Hub;

namespace PixArtLora.Cli.Verbs;

/// <summary>
/// <c>lora download &lt;id&gt; [--include transformer/ ...] [--repo_type dataset] [--revision main]</c>: fetches a model or
/// dataset into the Hugging Face cache (shared with Python tools) and prints the local folder. Reads HF_ENDPOINT,
/// HF_HUB_CACHE / HF_HOME, HF_TOKEN and HF_HUB_OFFLINE like huggingface_hub.
/// </summary>
public static class DownloadVerb
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "Hugging Face id (org/name) or a local folder" };
        var include = CliOptions.Create<string[]>("--include", "Only files matching these patterns (fnmatch; 'transformer/' for a folder); default all files");
        include.AllowMultipleArgumentsPerToken = true;
        var repoType = CliOptions.Create<string>("--repo_type", "model or dataset", "model");
        var revision = CliOptions.Create<string>("--revision", "Branch, tag or commit", "main");
        var offline = CliOptions.Create<bool>("--offline", "Use only the cache, never the network (as HF_HUB_OFFLINE=1)");

        var command = new Command("download", "Download a model or dataset from the Hugging Face Hub into the local cache") { id, include, repoType, revision, offline };
        command.SetAction(async (parse, ct) =>
        {
            var type = parse.GetValue(repoType)?.ToLowerInvariant() switch
            {
                "model" or "models" => HubRepoType.Model,
                "dataset" or "datasets" => HubRepoType.Dataset,
                var other => throw new ArgumentException($"--repo_type '{other}': expected model or dataset"),
            };
            var options = HubOptions.FromEnvironment();
            if (parse.GetValue(offline)) options = options with { Offline = true };
            var patterns = parse.GetValue(include) is { Length: > 0 } p ? p : null;
            using var client = new HubClient(options);
            var snapshot = await HubProgressBars.RunAsync(progress =>
                client.ResolveAsync(parse.GetValue(id)!, type, patterns, parse.GetValue(revision)!, progress, ct));
            parse.InvocationConfiguration.Output.WriteLine(snapshot.Folder);
            return 0;
        });
        return command;
    }
}
