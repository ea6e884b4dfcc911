using Parquet;
using Parquet.Schema;
using PixArtLora.Data.Images;

namespace PixArtLora.Data.Sources;

/// <summary>
/// Serves image bytes of parquet rows at training time. Parquet's unit of reading is a column chunk, so a
/// whole row group's images are read at once; the most recently used row groups are kept up to a byte budget
/// (shuffled access to a small dataset such as pokemon then reads each row group once). Thread-safe.
/// </summary>
internal sealed class ParquetImageStore(long budgetBytes)
{
    sealed record Entry((string File, int RowGroup) Key, byte[]?[] Cells, long Bytes);

    readonly object _lock = new();
    readonly LinkedList<Entry> _recent = new(); // most recent first
    long _bytes;

    public byte[] Read(string file, int rowGroup, int row, string[] fieldPath, string name)
    {
        lock (_lock)
        {
            var node = _recent.First;
            while (node != null && node.Value.Key != (file, rowGroup)) node = node.Next;
            if (node == null)
            {
                node = _recent.AddFirst(Load(file, rowGroup, fieldPath, name));
                _bytes += node.Value.Bytes;
                while (_bytes > budgetBytes && _recent.Count > 1) { _bytes -= _recent.Last!.Value.Bytes; _recent.RemoveLast(); }
            }
            else if (node != _recent.First)
            {
                _recent.Remove(node);
                _recent.AddFirst(node);
            }
            var cells = node.Value.Cells;
            if (row >= cells.Length || cells[row] is not { } bytes)
                throw new ImageLoadException(name, ImageProblem.Missing, "image bytes are missing (the parquet file changed since the dataset was opened?)");
            return bytes.ToArray();
        }
    }

    static Entry Load(string file, int rowGroup, string[] fieldPath, string name)
    {
        try
        {
            return Task.Run(async () =>
            {
                await using var reader = await ParquetReader.CreateAsync(file).ConfigureAwait(false);
                var field = reader.Schema.GetDataFields().FirstOrDefault(f => f.Path.ToList().SequenceEqual(fieldPath))
                    ?? throw new ImageLoadException(name, ImageProblem.Missing, $"column '{string.Join(".", fieldPath)}' is no longer in {file}");
                using var group = reader.OpenRowGroupReader(rowGroup);
                var cells = new byte[]?[group.RowCount];
                long total = 0;
                await ParquetColumns.ReadBytesAsync(group, field, file, (r, bytes) =>
                {
                    cells[r] = bytes?.ToArray();
                    total += cells[r]?.Length ?? 0;
                }).ConfigureAwait(false);
                return new Entry((file, rowGroup), cells, total);
            }).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ParquetException)
        {
            throw new ImageLoadException(name, ImageProblem.Missing, $"cannot read row group {rowGroup} of {file}: {e.Message}", e);
        }
    }
}

/// <summary>An image stored as bytes in one row of a parquet file (Hugging Face datasets' image column).</summary>
public sealed class ParquetImageSource : IImageSource
{
    readonly ParquetImageStore _store;
    readonly string[] _fieldPath;
    readonly string _hash;

    internal ParquetImageSource(ParquetImageStore store, string file, int rowGroup, int rowInGroup, long rowInFile, string[] fieldPath, string hash)
    {
        _store = store;
        File = file;
        RowGroup = rowGroup;
        RowInGroup = rowInGroup;
        RowInFile = rowInFile;
        _fieldPath = fieldPath;
        _hash = hash;
    }

    /// <summary>The parquet file.</summary>
    public string File { get; }
    /// <summary>Row group index in the file.</summary>
    public int RowGroup { get; }
    /// <summary>Row index within the row group.</summary>
    public int RowInGroup { get; }
    /// <summary>Row index within the file (0-based).</summary>
    public long RowInFile { get; }

    /// <inheritdoc/>
    public string Name => $"{File} row {RowInFile}";

    /// <inheritdoc/>
    public byte[] ReadBytes() => _store.Read(File, RowGroup, RowInGroup, _fieldPath, Name);

    /// <inheritdoc/>
    public string ContentHash() => _hash;
}
