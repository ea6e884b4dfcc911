using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Types;
using ArrowField = Apache.Arrow.Field;

namespace PixArtLora.Tests.Data;

/// <summary>One row of a Hugging Face-style image dataset.</summary>
/// <param name="Image">Encoded image bytes; null makes the struct's bytes field null.</param>
/// <param name="ImagePath">The struct's path field.</param>
/// <param name="ImageStructIsNull">Makes the whole image struct null.</param>
/// <param name="Captions">Caption column values (null cells allowed).</param>
internal sealed record HfRow(byte[]? Image, string? ImagePath, bool ImageStructIsNull, IReadOnlyDictionary<string, string?> Captions);

/// <summary>
/// Writes parquet files through Arrow C++ (ParquetSharp), the engine pyarrow and the Hub use, with the schema
/// `datasets` gives an Image feature: image = struct {bytes: binary, path: string}, plus string caption columns.
/// Every <paramref name="rowGroupSize"/> rows start a new row group.
/// </summary>
internal static class HfParquet
{
    public static void Write(string path, IReadOnlyList<HfRow> rows, IReadOnlyList<string> captionColumns, int rowGroupSize, bool imageAsStruct = true)
    {
        var imageStruct = new StructType([new ArrowField("bytes", BinaryType.Default, true), new ArrowField("path", StringType.Default, true)]);
        var builder = new Schema.Builder()
            .Field(new ArrowField("image", imageAsStruct ? imageStruct : BinaryType.Default, true));
        foreach (var c in captionColumns) builder.Field(new ArrowField(c, StringType.Default, true));
        var features = new Dictionary<string, object> { ["image"] = new Dictionary<string, string> { ["_type"] = "Image" } };
        foreach (var c in captionColumns) features[c] = new Dictionary<string, string> { ["dtype"] = "string", ["_type"] = "Value" };
        builder.Metadata("huggingface", JsonSerializer.Serialize(new { info = new { features } }));
        var schema = builder.Build();

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var writer = new ParquetSharp.Arrow.FileWriter(path, schema);
        for (int start = 0; start < rows.Count; start += rowGroupSize)
        {
            var chunk = rows.Skip(start).Take(rowGroupSize).ToList();
            var bytes = new BinaryArray.Builder();
            var paths = new StringArray.Builder();
            var valid = new ArrowBuffer.BitmapBuilder();
            foreach (var r in chunk)
            {
                valid.Append(!r.ImageStructIsNull);
                if (r.ImageStructIsNull || r.Image == null) bytes.AppendNull(); else bytes.Append(r.Image.AsSpan());
                if (r.ImageStructIsNull || r.ImagePath == null) paths.AppendNull(); else paths.Append(r.ImagePath);
            }
            IArrowArray image = imageAsStruct
                ? new StructArray(imageStruct, chunk.Count, [bytes.Build(), paths.Build()], valid.Build(), chunk.Count(r => r.ImageStructIsNull))
                : bytes.Build();
            var columns = new List<IArrowArray> { image };
            foreach (var c in captionColumns)
            {
                var text = new StringArray.Builder();
                foreach (var r in chunk)
                    if (r.Captions.TryGetValue(c, out var v) && v != null) text.Append(v); else text.AppendNull();
                columns.Add(text.Build());
            }
            writer.WriteRecordBatch(new RecordBatch(schema, columns, chunk.Count));
        }
        writer.Close();
    }
}
