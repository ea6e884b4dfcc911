using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PixArtLora.IO;
using PixArtLora.Training.Optimizers;
using static TorchSharp.torch;

namespace PixArtLora.Training.Checkpoints;

/// <summary>
/// Writes and reads a training checkpoint folder <c>checkpoint-&lt;step&gt;</c>:
/// <list type="bullet">
/// <item><c>trainable.safetensors</c>: the trainable weights;</item>
/// <item><c>optimizer.safetensors</c> + <c>optimizer.json</c>: optimizer state (<see cref="OptimizerStateFile"/>);</item>
/// <item><c>ema.safetensors</c> + <c>ema.json</c> when an EMA is kept;</item>
/// <item><c>random.safetensors</c>: the seed and the state of every random stream (<see cref="TrainingRandom.Save"/>);</item>
/// <item><c>manifest.json</c>: step, epoch, batch position, schedule settings, seed and the trainer's extras.</item>
/// </list>
/// The folder is filled under a temporary name and renamed when complete, so a crash leaves either the
/// previous checkpoints or a hidden temp folder that <see cref="CheckpointDirectory.FindLatest"/> ignores.
/// </summary>
public static class TrainingCheckpoint
{
    public const int FormatVersion = 1;
    public const string FormatName = "pixartlora-training-checkpoint";
    public const string ManifestFileName = "manifest.json";
    public const string WeightsFileName = "trainable.safetensors";

    /// <summary>
    /// Writes <c>checkpoint-&lt;GlobalStep&gt;</c> under <paramref name="outputDir"/> (replacing one of the same step),
    /// then deletes the oldest checkpoints beyond <paramref name="totalLimit"/> (null: keep all).
    /// </summary>
    /// <param name="outputDir">The run's output folder, which holds its checkpoint folders.</param>
    /// <param name="position">Step, epoch and batch the run has reached; the step names the folder.</param>
    /// <param name="parts">The live state to capture.</param>
    /// <param name="totalLimit">Keep at most this many checkpoints (<c>--checkpoints_total_limit</c>).</param>
    /// <param name="extra">The trainer's own facts to check on resume (mode, base model, LoRA rank, ...).</param>
    /// <param name="writeExtraFiles">Writes further files into the folder being filled (e.g. the LoRA in its
    /// published format, usable without resuming).</param>
    /// <returns>The path of the new checkpoint folder.</returns>
    public static string Save(string outputDir, TrainingPosition position, TrainingStateParts parts,
        int? totalLimit = null, JsonObject? extra = null, Action<string>? writeExtraFiles = null)
    {
        if (totalLimit is <= 0) throw new ArgumentException($"checkpoints_total_limit must be >= 1, got {totalLimit}");
        string path = Path.Combine(outputDir, CheckpointDirectory.FolderName(position.GlobalStep));
        AtomicFile.WriteDirectory(path, tmp =>
        {
            SafetensorsWriter.Save(Path.Combine(tmp, WeightsFileName),
                parts.TrainableWeights.Select(w => new KeyValuePair<string, Tensor>(w.Name, w.Parameter)).ToList());
            OptimizerStateFile.Save(tmp, parts.Optimizer);
            parts.Ema?.Save(tmp);
            parts.Random.Save(tmp);
            writeExtraFiles?.Invoke(tmp);
            var manifest = new JsonObject
            {
                ["format"] = FormatName,
                ["format_version"] = FormatVersion,
                ["global_step"] = position.GlobalStep,
                ["epoch"] = position.Epoch,
                ["batch_in_epoch"] = position.BatchInEpoch,
                ["optimizer"] = parts.Optimizer.Kind,
                ["lr_scheduler"] = parts.Schedule.ToJson(),
                ["learning_rate"] = parts.Optimizer.LearningRate,
                ["ema"] = parts.Ema != null,
                ["seed"] = parts.Random.Seed,
                ["created_utc"] = DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture),
                ["extra"] = extra?.DeepClone() ?? new JsonObject(),
            };
            // Written last: a folder with a manifest is complete even if something renamed it by hand.
            AtomicFile.WriteAllText(Path.Combine(tmp, ManifestFileName), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        });
        if (totalLimit is int limit) CheckpointDirectory.Prune(outputDir, limit, keep: path);
        CheckpointDirectory.DeleteStaleTemporaryFolders(outputDir);
        return path;
    }

    /// <summary>Reads and checks the manifest of <paramref name="checkpointDir"/>.</summary>
    public static TrainingCheckpointManifest ReadManifest(string checkpointDir)
    {
        string file = Path.Combine(checkpointDir, ManifestFileName);
        if (!File.Exists(file))
            throw new FileNotFoundException($"{checkpointDir} is not a complete training checkpoint: {ManifestFileName} is missing", file);
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new InvalidDataException("not a JSON object"); }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        { throw new InvalidDataException($"{file}: not a valid checkpoint manifest ({e.Message})", e); }

        T Get<T>(string key) => json[key] is { } v ? v.GetValue<T>() : throw new InvalidDataException($"{file}: field '{key}' is missing");
        if (Get<string>("format") != FormatName)
            throw new InvalidDataException($"{file}: format '{json["format"]}', expected '{FormatName}'");
        int version = Get<int>("format_version");
        if (version > FormatVersion)
            throw new InvalidDataException($"{file}: format_version {version} is newer than this build reads ({FormatVersion})");
        return new TrainingCheckpointManifest(
            Path.GetFullPath(checkpointDir),
            version,
            new TrainingPosition(Get<long>("global_step"), Get<long>("epoch"), Get<long>("batch_in_epoch")),
            Get<string>("optimizer"),
            json["lr_scheduler"] as JsonObject ?? throw new InvalidDataException($"{file}: field 'lr_scheduler' is missing"),
            Get<bool>("ema"),
            Get<long>("seed"),
            DateTimeOffset.Parse(Get<string>("created_utc"), CultureInfo.InvariantCulture),
            json["extra"] as JsonObject ?? new JsonObject());
    }

    /// <summary>
    /// Restores <paramref name="parts"/> in place from <paramref name="checkpointDir"/>: weights (every saved
    /// name must match a trainable weight and vice versa), optimizer state, EMA and random streams. The
    /// schedule is not replaced: like diffusers' resume, the run continues with its configured schedule at
    /// the restored step (compare <see cref="TrainingCheckpointManifest.Schedule"/> to warn about a change).
    /// </summary>
    /// <returns>The manifest, whose <see cref="TrainingCheckpointManifest.Position"/> says where to continue.</returns>
    public static TrainingCheckpointManifest Load(string checkpointDir, TrainingStateParts parts)
    {
        var manifest = ReadManifest(checkpointDir);
        if (manifest.OptimizerKind != parts.Optimizer.Kind)
            throw new InvalidDataException($"{checkpointDir}: saved with optimizer '{manifest.OptimizerKind}', this run uses " +
                $"'{parts.Optimizer.Kind}'; resume with the same --optimizer or start a new run");
        if (manifest.HasEma != (parts.Ema != null))
            throw new InvalidDataException($"{checkpointDir}: " + (manifest.HasEma
                ? "holds an EMA but this run keeps none; add --use_ema or start a new run"
                : "holds no EMA but this run keeps one; drop --use_ema or start a new run"));

        LoadWeights(Path.Combine(checkpointDir, WeightsFileName), parts.TrainableWeights);
        OptimizerStateFile.Load(checkpointDir, parts.Optimizer);
        parts.Ema?.Load(checkpointDir);
        parts.Random.Load(checkpointDir);
        return manifest;
    }

    static void LoadWeights(string file, IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> weights)
    {
        using var st = SafetensorsFile.Open(file);
        var expected = weights.Select(w => w.Name).ToHashSet();
        var missing = weights.Where(w => !st.Entries.ContainsKey(w.Name)).Select(w => w.Name).ToList();
        var unexpected = st.Entries.Keys.Where(k => !expected.Contains(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{file}: trainable weights do not match this run's model" +
                (missing.Count > 0 ? $"; missing {missing.Count} (e.g. '{missing[0]}')" : "") +
                (unexpected.Count > 0 ? $"; unexpected {unexpected.Count} (e.g. '{unexpected[0]}')" : "") +
                " — was the checkpoint written with another model, mode or LoRA configuration?");
        using var noGrad = no_grad();
        foreach (var (name, p) in weights) st.ReadInto(name, p);
    }
}
