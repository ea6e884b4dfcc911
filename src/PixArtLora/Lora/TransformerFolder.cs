namespace PixArtLora.Lora;

/// <summary>
/// Finds the transformer of a diffusers model on disk: either the transformer folder itself (config.json +
/// diffusion_pytorch_model*.safetensors) or a pipeline folder with a <c>transformer/</c> subfolder.
/// </summary>
public static class TransformerFolder
{
    /// <summary>The weights' base name in diffusers' layout.</summary>
    public const string WeightsBaseName = "diffusion_pytorch_model";

    /// <summary>The folder holding the transformer's config.json and weights.</summary>
    public static string Resolve(string path)
    {
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"model folder not found: {path}");
        if (HasWeights(path)) return path;
        string sub = Path.Combine(path, "transformer");
        if (Directory.Exists(sub) && HasWeights(sub)) return sub;
        throw new FileNotFoundException(
            $"{path}: no transformer here — expected config.json and {WeightsBaseName}*.safetensors in this folder or in its transformer/ subfolder");
    }

    static bool HasWeights(string folder) =>
        File.Exists(Path.Combine(folder, "config.json")) && Directory.EnumerateFiles(folder, "*.safetensors").Any();
}
