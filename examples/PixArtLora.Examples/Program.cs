// Generate an image with the PixArtLora library, without the CLI:
//
//   dotnet run --project examples/PixArtLora.Examples -- [model] [lora.safetensors[:scale]] [output.png]
//
// model: a registry id (sigma-512-ms, alpha-1024-ms …; downloaded from the Hugging Face Hub into its usual cache),
// a local diffusers folder, or "tiny" (default): a small offline model generated on first use, which draws noise-like
// pictures in seconds on a CPU — useful to see the API work end to end.
using PixArtLora.Data.Images;
using PixArtLora.Inference;

string model = args.Length > 0 ? args[0] : "tiny";
var loras = args.Length > 1 ? new[] { LoraSpec.Parse(args[1]) } : Array.Empty<LoraSpec>();
string output = args.Length > 2 ? args[2] : "example.png";

// 1. Load: configs are read and LoRAs checked now; weights load on first use (T5 is released after encoding).
using var pipeline = PixArtPipeline.Load(model, new PipelineLoadOptions
{
    Loras = loras,                      // each with its scale: "style.safetensors:0.8"
    DType = TorchSharp.torch.ScalarType.Float32,
    Log = Console.WriteLine,
});

// 2. Generate: unset values take the model's defaults (its resolution, DPM-Solver++ 20 steps, guidance 4.5).
var request = new GenerationRequest
{
    Prompts = new[] { "a watercolor painting of a fox in the snow" },
    NegativePrompt = "",
    Seed = 42,
    Width = 512,
    Height = 384,                       // snapped to the nearest aspect-ratio bin, resized back afterwards
};
using var result = pipeline.Generate(request, progress => Console.Write($"\rstep {progress.Step}/{progress.Steps}"));
Console.WriteLine();

// 3. Save as PNG with the generation parameters in its "parameters" text chunk (readable by image browsers).
using var image = result.ToImage(0);
PngImageFile.Save(image, output, new GenerationParameters
{
    Prompt = request.Prompts[0], Seed = result.Items[0].Seed, Steps = result.Sampling.Steps,
    Sampler = result.Sampling.DisplayName, CfgScale = result.Sampling.GuidanceScale,
    Width = result.Size.Width, Height = result.Size.Height, Model = pipeline.ModelName,
    Loras = loras.Select(l => new LoraReference(Path.GetFileNameWithoutExtension(l.Path), l.Scale)).ToList(),
});
Console.WriteLine($"{output}: {result.Size}, {result.Sampling.DisplayName}, seed {result.Items[0].Seed}");
