using System.Text;
using Parquet;
using Parquet.Data;
using Parquet.Schema;

namespace PixArtLora.Data.Sources;

/// <summary>
/// Reads nullable string and binary columns of one row group, nested or not, one value per row.
/// Parquet.Net's typed <c>ReadAsync</c> loses nulls of nullable fields inside a struct (HF's image column is
/// struct {bytes, path}) and shifts every later value up; here values are placed from the definition levels
/// instead: a row has a value exactly when its level equals the field's maximum, and the raw values are packed.
/// </summary>
internal static class ParquetColumns
{
    /// <summary>The column's cells as strings (UTF-8), null where the cell or an enclosing struct is null.</summary>
    public static async Task<string?[]> ReadStringsAsync(ParquetRowGroupReader group, DataField field, string where)
    {
        var result = new string?[checked((int)group.RowCount)];
        await ReadAsync(group, field, where, (row, chars, bytes) =>
            result[row] = chars is { } c ? c.ToString() : bytes is { } b ? Encoding.UTF8.GetString(b.Span) : null);
        return result;
    }

    /// <summary>
    /// Calls <paramref name="visit"/> for every row with the cell's bytes (null when absent). The memory is only
    /// valid during the call: it belongs to a pooled buffer released afterwards.
    /// </summary>
    public static Task ReadBytesAsync(ParquetRowGroupReader group, DataField field, string where, Action<int, ReadOnlyMemory<byte>?> visit) =>
        ReadAsync(group, field, where, (row, chars, bytes) =>
        {
            if (chars != null) throw new InvalidDataException($"{where}: column '{field.Path}' holds text, expected binary image bytes");
            visit(row, bytes);
        });

    static async Task ReadAsync(ParquetRowGroupReader group, DataField field, string where,
        Action<int, ReadOnlyMemory<char>?, ReadOnlyMemory<byte>?> visit)
    {
        if (field.MaxRepetitionLevel > 0)
            throw new InvalidDataException($"{where}: column '{field.Path}' is a list; expected one value per row");
        int rows = checked((int)group.RowCount);
        using var raw = await group.ReadRawColumnDataBaseAsync(field).ConfigureAwait(false);
        int[]? levels = field.MaxDefinitionLevel > 0 ? raw.DefinitionLevels.ToArray() : null;
        if (levels != null && levels.Length != rows)
            throw new InvalidDataException($"{where}: column '{field.Path}' has {levels.Length} definition levels for {rows} rows");
        int next = 0;
        switch (raw)
        {
            case RawColumnData<ReadOnlyMemory<char>> text:
                for (int row = 0; row < rows; row++)
                    visit(row, Present(levels, row, field) ? text.Values[next++] : (ReadOnlyMemory<char>?)null, null);
                break;
            case RawColumnData<ReadOnlyMemory<byte>> binary:
                for (int row = 0; row < rows; row++)
                    visit(row, null, Present(levels, row, field) ? binary.Values[next++] : (ReadOnlyMemory<byte>?)null);
                break;
            default:
                throw new InvalidDataException($"{where}: column '{field.Path}' has type {field.ClrType.Name}, expected a string or binary column");
        }
    }

    // The casts to nullable matter: `cond ? memory : null` would type as ReadOnlyMemory (null converts through
    // the implicit array conversion) and turn every null cell into an empty value.
    static bool Present(int[]? levels, int row, DataField field) => levels == null || levels[row] == field.MaxDefinitionLevel;
}
