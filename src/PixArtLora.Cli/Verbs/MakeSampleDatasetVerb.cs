using System.CommandLine;
using PixArtLora.Data.Samples;

namespace PixArtLora.Cli.Verbs;

/// <summary>
/// <c>lora make-sample-dataset [--output shapes.parquet] [--count 48] [--size 256]</c>: writes the offline shapes dataset as a
/// parquet file (the same one <c>--dataset shapes</c> generates on first use) and prints its path.
/// </summary>
public static class MakeSampleDatasetVerb
{
    public static Command Create()
    {
        var output = CliOptions.Create<string>("--output", "parquet file to write", "shapes.parquet", "-o");
        var count = CliOptions.Create<int>("--count", "number of images", ShapesDataset.DefaultCount);
        var size = CliOptions.Create<int>("--size", "image side in pixels", ShapesDataset.DefaultSize);
        var command = new Command("make-sample-dataset", "Write the offline coloured-shapes training set (images + captions) as a parquet file")
        {
            output, count, size,
        };
        command.SetAction(parse =>
        {
            string path = ShapesDataset.Write(parse.GetValue(output)!, parse.GetValue(count), parse.GetValue(size));
            parse.InvocationConfiguration.Output.WriteLine(path);
            return 0;
        });
        return command;
    }
}
